/*
 * app_ivr_record: stereo call recording that wakes on a timer, for the 12345 IVR engine.
 *
 * Copyright (C) 2026 The ivr12345 project contributors
 *
 * This program is free software, distributed under the terms of the GNU General Public
 * License version 2 (or, at your option, any later version). See the project's README.
 *
 * Why this exists (issue 21, benchmarks/README.md section 10): a spy audiohook whose thread is
 * signalled for every 20 ms frame of either direction costs a recorded call ~100 thread wake-ups
 * a second. This recorder attaches a spy audiohook with no trigger at all; its thread sleeps
 * TICK_MS between drains and writes what both directions queued as one stereo stream: what the
 * channel reads (the citizen) left, what it is sent (the seat, the bridge) right, 8 kHz signed
 * linear, interleaved -- the layout recording/rules.py reads.
 *
 * Written from scratch against Asterisk's public headers (asterisk-dev); built inside the test
 * bed's rootfs by asterisk-conf/rootfs-recipe.sh.
 */

/*** MODULEINFO
	<support_level>extended</support_level>
 ***/

#include "asterisk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "asterisk/app.h"
#include "asterisk/audiohook.h"
#include "asterisk/autochan.h"
#include "asterisk/channel.h"
#include "asterisk/datastore.h"
#include "asterisk/file.h"
#include "asterisk/format_cache.h"
#include "asterisk/frame.h"
#include "asterisk/lock.h"
#include "asterisk/module.h"
#include "asterisk/pbx.h"
#include "asterisk/stasis_channels.h"
#include "asterisk/utils.h"


#define TICK_MS 100        /* how often the thread drains the hook: ~10 wake-ups a second */
#define CHUNK 160          /* samples per read: 20 ms at 8 kHz */

static const char app_start[] = "IvrRecord";
static const char app_stop[] = "IvrRecordStop";
static const char start_synopsis[] = "Record the channel's call in stereo, draining its audio on a timer";
static const char start_description[] =
	"IvrRecord(file,[options],[done]): file is an absolute path whose extension names the format\n"
	"(raw: 8 kHz signed linear); the channel's read audio left, what it is sent right.\n"
	"Options: b - only while the channel is bridged; i(var) - store the recording's id in var.\n"
	"done: the path the file is renamed to when the recording ends. Emits MixMonitorStart.\n";
static const char stop_synopsis[] = "Stop a recording IvrRecord began on this channel";
static const char stop_description[] =
	"IvrRecordStop([id]): the recording whose id IvrRecord stored (empty: the first one).\n"
	"Its file is finished and renamed by its thread right after. Emits MixMonitorStop.\n";
static const char hook_source[] = "IvrRecord";

static int active;  /* recordings whose thread runs: the module is not unloaded under them */
AST_MUTEX_DEFINE_STATIC(active_lock);

/*! One recording: owned by its thread and by the channel's datastore (ao2 references). */
struct recording {
	struct ast_audiohook hook;
	struct ast_autochan *autochan;
	struct ast_filestream *fs;
	int bridged_only;
	int hooked;   /*!< the audiohook was initialised: destroyed with the last reference */
	char *done;   /*!< rename target, or NULL */
	char *path;   /*!< the file being written */
};

static void recording_destroy(void *obj)
{
	struct recording *rec = obj;

	/* a stop in the dialplan may still signal the hook after the thread ended */
	if (rec->hooked) {
		ast_audiohook_destroy(&rec->hook);
	}
	if (rec->autochan) {
		ast_autochan_destroy(rec->autochan);
	}
	if (rec->fs) {
		ast_closestream(rec->fs);
	}
	ast_free(rec->done);
	ast_free(rec->path);
}

static void datastore_destroy(void *data)
{
	ao2_cleanup(data);
}

static const struct ast_datastore_info recording_ds = {
	.type = "ivr_record",
	.destroy = datastore_destroy,
};

/*! Interleave what the hook gave for one chunk; a missing side is silence. */
static void write_chunk(struct recording *rec, struct ast_frame *left, struct ast_frame *right)
{
	int16_t stereo[CHUNK * 2];
	const int16_t *l = left ? left->data.ptr : NULL;
	const int16_t *r = right ? right->data.ptr : NULL;
	int n = CHUNK;
	struct ast_frame frame = {
		.frametype = AST_FRAME_VOICE,
		.subclass.format = ast_format_slin,
		.data.ptr = stereo,
		.src = hook_source,
	};

	if (left && left->samples < n) {
		n = left->samples;
	}
	if (right && right->samples < n) {
		n = right->samples;
	}
	for (int i = 0; i < n; i++) {
		stereo[2 * i] = l ? l[i] : 0;
		stereo[2 * i + 1] = r ? r[i] : 0;
	}
	frame.samples = n * 2;
	frame.datalen = n * 2 * sizeof(int16_t);
	if (rec->fs && n > 0) {
		ast_writestream(rec->fs, &frame);
	}
}

/*! Take every whole chunk both directions hold; written, or dropped while not bridged
 * (with b). The caller holds the hook's lock. */
static void drain(struct recording *rec, int keep)
{
	struct ast_frame *mixed, *left, *right;

	for (;;) {
		left = right = NULL;
		mixed = ast_audiohook_read_frame_all(&rec->hook, CHUNK, ast_format_slin, &left, &right);
		if (!mixed) {
			break;
		}
		if (keep) {
			write_chunk(rec, left, right);
		}
		ast_frfree(mixed);
		if (left) {
			ast_frfree(left);
		}
		if (right) {
			ast_frfree(right);
		}
	}
}

static int is_bridged(struct recording *rec)
{
	int bridged;

	ast_autochan_channel_lock(rec->autochan);
	bridged = ast_channel_is_bridged(rec->autochan->chan);
	ast_autochan_channel_unlock(rec->autochan);
	return bridged;
}

static void *recording_thread(void *obj)
{
	struct recording *rec = obj;
	struct timespec until;
	int bridged = rec->bridged_only ? is_bridged(rec) : 1;
	int was_bridged;  /* at this tick and at the one before */

	ast_audiohook_lock(&rec->hook);
	while (rec->hook.status == AST_AUDIOHOOK_STATUS_RUNNING) {
		until = ast_tsnow();
		until.tv_nsec += TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec += 1;
			until.tv_nsec -= 1000000000L;
		}
		/* only a status change signals this hook (no trigger flag): stop or hang-up */
		ast_cond_timedwait(&rec->hook.trigger, &rec->hook.lock, &until);
		was_bridged = bridged;
		if (rec->bridged_only) {
			ast_audiohook_unlock(&rec->hook);
			bridged = is_bridged(rec);
			ast_audiohook_lock(&rec->hook);
		}
		/* a tick's audio is kept if the channel was bridged at either of its ends: when it joins or
		 * leaves a bridge, the talk is whole (at most one tick of the moment around it is kept too) */
		drain(rec, bridged || was_bridged);
	}
	ast_audiohook_unlock(&rec->hook);

	ast_audiohook_detach(&rec->hook);
	ast_audiohook_lock(&rec->hook);
	drain(rec, bridged || (rec->bridged_only ? is_bridged(rec) : 1));
	ast_audiohook_unlock(&rec->hook);

	if (rec->fs) {
		ast_closestream(rec->fs);
		rec->fs = NULL;
		if (rec->done && rename(rec->path, rec->done)) {
			ast_log(LOG_WARNING, "IvrRecord: cannot rename %s to %s: %s\n", rec->path, rec->done, strerror(errno));
		}
	}
	/* its channel reference now, not with the datastore's: the channel holds that one */
	ast_autochan_destroy(rec->autochan);
	rec->autochan = NULL;
	ao2_ref(rec, -1);

	ast_mutex_lock(&active_lock);
	active--;
	ast_mutex_unlock(&active_lock);
	return NULL;
}

/*! The file, opened now (an unreachable seat still leaves an empty file, as MixMonitor does):
 * NULL if it cannot be created (the disk is full: the call goes on unrecorded). */
static struct ast_filestream *open_file(const char *path)
{
	char *dir = ast_strdupa(path);
	char *base = ast_strdupa(path);
	char *slash = strrchr(dir, '/');
	char *dot = strrchr(base, '.');
	struct ast_filestream *fs;

	if (slash) {
		*slash = '\0';
		ast_mkdir(dir, 0777);
	}
	*dot = '\0';
	fs = ast_writefile(base, dot + 1, NULL, O_CREAT | O_TRUNC | O_WRONLY, 0, AST_FILE_MODE);
	if (!fs) {
		ast_log(LOG_WARNING, "IvrRecord: cannot create %s\n", path);
	}
	return fs;
}

enum {
	OPT_BRIDGED = (1 << 0),
	OPT_ID = (1 << 1),
};

enum {
	OPT_ARG_ID,
	OPT_ARG_COUNT,
};

AST_APP_OPTIONS(start_options, BEGIN_OPTIONS
	AST_APP_OPTION('b', OPT_BRIDGED),
	AST_APP_OPTION_ARG('i', OPT_ID, OPT_ARG_ID),
END_OPTIONS);

/*! A path the dialplan gave: absolute, with an extension after its last slash. */
static int valid_path(const char *path)
{
	const char *slash = strrchr(path, '/');

	return path[0] == '/' && slash && strchr(slash, '.') && slash[1] != '.';
}

static int start_exec(struct ast_channel *chan, const char *data)
{
	AST_DECLARE_APP_ARGS(args, AST_APP_ARG(file); AST_APP_ARG(options); AST_APP_ARG(done););
	struct ast_flags flags = { 0 };
	char *opts[OPT_ARG_COUNT] = { NULL };
	char *parse = ast_strdupa(S_OR(data, ""));
	struct recording *rec;
	struct ast_datastore *ds;
	char id[32];
	pthread_t thread;

	AST_STANDARD_APP_ARGS(args, parse);
	if (ast_strlen_zero(args.file) || !valid_path(args.file)
		|| (!ast_strlen_zero(args.done) && !valid_path(args.done))) {
		ast_log(LOG_WARNING, "%s requires an absolute file name with an extension\n", app_start);
		return -1;
	}
	if (!ast_strlen_zero(args.options) && ast_app_parse_options(start_options, &flags, opts, args.options)) {
		return -1;
	}

	rec = ao2_alloc(sizeof(*rec), recording_destroy);
	if (!rec) {
		return -1;
	}
	rec->bridged_only = ast_test_flag(&flags, OPT_BRIDGED) ? 1 : 0;
	rec->path = ast_strdup(args.file);
	rec->done = ast_strlen_zero(args.done) ? NULL : ast_strdup(args.done);
	rec->autochan = ast_autochan_setup(chan);
	if (!rec->path || !rec->autochan || ast_audiohook_init(&rec->hook, AST_AUDIOHOOK_TYPE_SPY, hook_source, 0)) {
		ao2_ref(rec, -1);
		return -1;
	}
	rec->hooked = 1;
	rec->fs = open_file(rec->path);

	snprintf(id, sizeof(id), "%p", rec);
	ds = ast_datastore_alloc(&recording_ds, id);
	if (!ds || ast_audiohook_attach(chan, &rec->hook)) {
		ast_log(LOG_WARNING, "%s: cannot hook %s\n", app_start, ast_channel_name(chan));
		if (ds) {
			ast_datastore_free(ds);
		}
		goto fail;
	}
	ds->data = ao2_bump(rec);
	ast_mutex_lock(&active_lock);
	active++;
	ast_mutex_unlock(&active_lock);
	if (ast_pthread_create_detached_background(&thread, NULL, recording_thread, rec)) {
		ast_mutex_lock(&active_lock);
		active--;
		ast_mutex_unlock(&active_lock);
		ast_audiohook_detach(&rec->hook);
		ast_datastore_free(ds);
		goto fail;
	}
	/* the thread owns the reference taken by ao2_alloc from here, the datastore its own */
	ast_channel_lock(chan);
	ast_channel_datastore_add(chan, ds);
	ast_channel_unlock(chan);

	if (ast_test_flag(&flags, OPT_ID) && !ast_strlen_zero(opts[OPT_ARG_ID])) {
		pbx_builtin_setvar_helper(chan, opts[OPT_ARG_ID], id);
	}
	ast_channel_lock(chan);
	ast_channel_publish_blob(chan, ast_channel_mixmonitor_start_type(), NULL);
	ast_channel_unlock(chan);
	return 0;

fail:
	ao2_ref(rec, -1);
	return -1;
}

static int stop_exec(struct ast_channel *chan, const char *data)
{
	struct ast_datastore *ds;
	struct recording *rec;

	ast_channel_lock(chan);
	ds = ast_channel_datastore_find(chan, &recording_ds, ast_strlen_zero(data) ? NULL : data);
	if (ds) {
		ast_channel_datastore_remove(chan, ds);
	}
	ast_channel_unlock(chan);
	if (!ds) {
		return 0;
	}
	rec = ds->data;
	/* the thread wakes on this, writes what is left, closes and renames the file */
	ast_audiohook_update_status(&rec->hook, AST_AUDIOHOOK_STATUS_SHUTDOWN);
	ast_datastore_free(ds);

	ast_channel_lock(chan);
	ast_channel_publish_blob(chan, ast_channel_mixmonitor_stop_type(), NULL);
	ast_channel_unlock(chan);
	return 0;
}

static int unload_module(void)
{
	int busy;

	ast_mutex_lock(&active_lock);
	busy = active;
	ast_mutex_unlock(&active_lock);
	if (busy) {
		return -1;
	}
	return ast_unregister_application(app_start) | ast_unregister_application(app_stop);
}

static int load_module(void)
{
	if (ast_register_application(app_start, start_exec, start_synopsis, start_description)
		|| ast_register_application(app_stop, stop_exec, stop_synopsis, stop_description)) {
		unload_module();
		return AST_MODULE_LOAD_DECLINE;
	}
	return AST_MODULE_LOAD_SUCCESS;
}

AST_MODULE_INFO(ASTERISK_GPL_KEY, AST_MODFLAG_DEFAULT, "IVR stereo recording on a timer",
	.support_level = AST_MODULE_SUPPORT_EXTENDED,
	.load = load_module,
	.unload = unload_module,
);
