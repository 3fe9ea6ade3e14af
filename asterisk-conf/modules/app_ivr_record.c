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
 * linear, interleaved -- the layout recording/rules.py reads. A side the core queued at a higher
 * rate (a wideband leg raises the hook's rate) is resampled to 8 kHz first.
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
#include <time.h>
#include <unistd.h>

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
#include "asterisk/translate.h"
#include "asterisk/utils.h"

/*
 * How often the thread drains the hook: ~10 wake-ups a second. Known loss (not fixed): when one
 * direction resumes after more than 500 ms without frames (AST_AUDIOHOOK_LONG_QUEUE_TOLERANCE,
 * main/audiohook.c), the core empties both directions' queues, which may still hold up to one
 * tick of the other direction: at most TICK_MS of audio is lost there (docs/recording.md).
 */
#define TICK_MS 100
#define CHUNK_MS 20        /* audio per read of the hook */
#define CHUNK 160          /* samples per side and chunk in the file: CHUNK_MS at 8 kHz */
#define MAX_TAKE 32        /* chunks taken per pass under the hook's lock (a tick holds ~5) */
#define STOP_WAIT_MS 2000  /* how long IvrRecordStop waits for the file to be finished */

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
	"Returns once its file is closed and renamed (at most 2 s). Emits MixMonitorStop.\n";
static const char hook_source[] = "IvrRecord";

static int live;     /* recordings not yet destroyed: the module is not unloaded under them */
static int next_id;  /* ids of recordings: a counter, never reused while Asterisk runs */

/*! A direction's conversion to 8 kHz, while the hook queues it at another rate. */
struct side {
	struct ast_trans_pvt *path;
	struct ast_format *from;  /*!< the format path converts from (a reference) */
};

/*! One recording: owned by its thread and by the channel's datastore (ao2 references). */
struct recording {
	struct ast_audiohook hook;
	struct ast_autochan *autochan;
	struct ast_filestream *fs;
	struct side sides[2];  /*!< left (read), right (write): the thread's own */
	ast_mutex_t lock;      /*!< protects stopping and finished */
	ast_cond_t cond;       /*!< on the monotonic clock: a stop wakes the thread, the end the stop */
	int stopping;
	int finished;          /*!< the file is closed and renamed */
	int bridged_only;
	int hooked;            /*!< the audiohook was initialised: destroyed with the last reference */
	int synced;            /*!< lock and cond were initialised */
	int write_failed;      /*!< a write failed (a full disk): nothing more is written */
	char *done;            /*!< rename target, or NULL */
	char *path;            /*!< the file being written */
};

static void recording_destroy(void *obj)
{
	struct recording *rec = obj;

	if (rec->hooked) {
		ast_audiohook_destroy(&rec->hook);
	}
	if (rec->autochan) {
		ast_autochan_destroy(rec->autochan);
	}
	if (rec->fs) {
		ast_closestream(rec->fs);
	}
	if (rec->synced) {
		ast_cond_destroy(&rec->cond);
		ast_mutex_destroy(&rec->lock);
	}
	ast_free(rec->done);
	ast_free(rec->path);
	/* last: once the reference is gone the module may be unloaded, so no code of ours may run */
	ast_atomic_fetchadd_int(&live, -1);
	ast_module_unref(AST_MODULE_SELF);
}

static void datastore_destroy(void *data)
{
	ao2_cleanup(data);
}

static const struct ast_datastore_info recording_ds = {
	.type = "ivr_record",
	.destroy = datastore_destroy,
};

/*! One chunk of one direction as CHUNK samples at 8 kHz into out: silence where it is missing. */
static void fill_side(struct recording *rec, struct side *side, struct ast_frame *f, int16_t *out)
{
	struct ast_frame *conv = NULL, *cur;
	int got = 0, n;

	if (f && ast_format_cmp(f->subclass.format, ast_format_slin) == AST_FORMAT_CMP_EQUAL) {
		got = MIN(f->samples, CHUNK);
		memcpy(out, f->data.ptr, got * sizeof(*out));
	} else if (f) {
		/* a wideband leg raised the hook's rate: this side needs its own resampler (its state
		 * runs on from chunk to chunk), built again only when the rate changes */
		if (ast_format_cmp(side->from, f->subclass.format) != AST_FORMAT_CMP_EQUAL) {
			if (side->path) {
				ast_translator_free_path(side->path);
			}
			ao2_replace(side->from, f->subclass.format);
			side->path = ast_translator_build_path(ast_format_slin, f->subclass.format);
			if (!side->path) {
				ast_log(LOG_WARNING, "IvrRecord: no path from %s to 8 kHz for %s: silence\n",
					ast_format_get_name(f->subclass.format), rec->path);
			}
		}
		conv = side->path ? ast_translate(side->path, f, 0) : NULL;
		for (cur = conv; cur && got < CHUNK; cur = AST_LIST_NEXT(cur, frame_list)) {
			n = MIN(cur->samples, CHUNK - got);
			if (cur->data.ptr && n > 0) {
				memcpy(out + got, cur->data.ptr, n * sizeof(*out));
				got += n;
			}
		}
		if (conv) {
			ast_frfree(conv);
		}
	}
	memset(out + got, 0, (CHUNK - got) * sizeof(*out));
}

/*! Interleave one chunk and write it (the caller checked there is a file to write to); the hook
 * is not locked here: a slow disk stalls no call. */
static void write_chunk(struct recording *rec, struct ast_frame *left, struct ast_frame *right)
{
	int16_t l[CHUNK], r[CHUNK], stereo[CHUNK * 2];
	struct ast_frame frame = {
		.frametype = AST_FRAME_VOICE,
		.subclass.format = ast_format_slin,
		.data.ptr = stereo,
		.samples = CHUNK * 2,
		.datalen = sizeof(stereo),
		.src = hook_source,
	};

	fill_side(rec, &rec->sides[0], left, l);
	fill_side(rec, &rec->sides[1], right, r);
	for (int i = 0; i < CHUNK; i++) {
		stereo[2 * i] = l[i];
		stereo[2 * i + 1] = r[i];
	}
	if (ast_writestream(rec->fs, &frame)) {
		/* a full disk: the file keeps what it has (the worker finds it shorter than the talk);
		 * one line in the log, not one per chunk, and the call goes on */
		rec->write_failed = 1;
		ast_log(LOG_WARNING, "IvrRecord: cannot write %s (%s): the recording stops here, the call goes on\n",
			rec->path, strerror(errno));
	}
}

/*! Take up to MAX_TAKE whole chunks both directions queued, each side as the hook holds it
 * (at its own rate: asking for that rate spares the core converting the mix we never use).
 * The caller holds the hook's lock. */
static int take(struct recording *rec, struct ast_frame **left, struct ast_frame **right)
{
	struct ast_format *fmt = ast_format_cache_get_slin_by_rate(rec->hook.hook_internal_samp_rate);
	int samples = ast_format_get_sample_rate(fmt) / (1000 / CHUNK_MS);
	struct ast_frame *mixed;
	int n;

	for (n = 0; n < MAX_TAKE; n++) {
		left[n] = right[n] = NULL;
		mixed = ast_audiohook_read_frame_all(&rec->hook, samples, fmt, &left[n], &right[n]);
		if (!mixed) {
			/* the core may have duplicated a side before failing */
			ast_frfree(left[n]);
			ast_frfree(right[n]);
			break;
		}
		ast_frfree(mixed);
	}
	return n;
}

static int is_bridged(struct recording *rec)
{
	int bridged;

	ast_autochan_channel_lock(rec->autochan);
	bridged = ast_channel_is_bridged(rec->autochan->chan);
	ast_autochan_channel_unlock(rec->autochan);
	return bridged;
}

/*! ms from now on the monotonic clock, which no change of the wall clock moves. */
static struct timespec after_ms(long ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec += 1;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/*! Sleep one tick, with no lock of the hook or the channel held; a stop wakes it at once. */
static void wait_tick(struct recording *rec)
{
	struct timespec until = after_ms(TICK_MS);

	ast_mutex_lock(&rec->lock);
	if (!rec->stopping) {
		ast_cond_timedwait(&rec->cond, &rec->lock, &until);
	}
	ast_mutex_unlock(&rec->lock);
}

static void *recording_thread(void *obj)
{
	struct recording *rec = obj;
	struct ast_frame *left[MAX_TAKE], *right[MAX_TAKE];
	int bridged = rec->bridged_only ? is_bridged(rec) : 1;
	int was_bridged, running = 1, n;

	while (running) {
		wait_tick(rec);
		/* the channel's lock is never taken with the hook's held: the channel's thread takes
		 * them the other way round for every frame */
		was_bridged = bridged;
		if (rec->bridged_only) {
			bridged = is_bridged(rec);
		}
		do {
			ast_audiohook_lock(&rec->hook);
			/* a stop or a hang-up (status): nothing is queued after it, this pass takes the rest */
			running = rec->hook.status == AST_AUDIOHOOK_STATUS_RUNNING;
			n = take(rec, left, right);
			ast_audiohook_unlock(&rec->hook);
			for (int i = 0; i < n; i++) {
				/* a tick's audio is kept if the channel was bridged at either of its ends: when
				 * it joins or leaves a bridge the talk is whole (at most a tick around it too) */
				if ((bridged || was_bridged) && rec->fs && !rec->write_failed) {
					write_chunk(rec, left[i], right[i]);
				}
				ast_frfree(left[i]);
				ast_frfree(right[i]);
			}
		} while (n == MAX_TAKE);
	}

	for (int i = 0; i < 2; i++) {
		if (rec->sides[i].path) {
			ast_translator_free_path(rec->sides[i].path);
		}
		ao2_cleanup(rec->sides[i].from);
	}
	if (rec->fs) {
		ast_closestream(rec->fs);
		rec->fs = NULL;
		/* after a failed write too: a .done shorter than the talk is what the worker marks
		 * incomplete (recording/expect.py cut_short), as with MixMonitor on a full disk */
		if (rec->done && rename(rec->path, rec->done)) {
			ast_log(LOG_WARNING, "IvrRecord: cannot rename %s to %s: %s\n", rec->path, rec->done, strerror(errno));
		}
	}
	ast_mutex_lock(&rec->lock);
	rec->finished = 1;
	ast_cond_broadcast(&rec->cond);
	ast_mutex_unlock(&rec->lock);

	/* the hook is in rec: the channel must have dropped it (DONE) before rec may be freed. After
	 * a stop the channel's thread drops it at its next frame, after a hang-up it has already */
	ast_audiohook_lock(&rec->hook);
	while (rec->hook.status != AST_AUDIOHOOK_STATUS_DONE) {
		ast_audiohook_trigger_wait(&rec->hook);
	}
	ast_audiohook_unlock(&rec->hook);

	/* its channel reference now, not with the datastore's: the channel holds that one */
	ast_autochan_destroy(rec->autochan);
	rec->autochan = NULL;
	ao2_ref(rec, -1);
	return NULL;
}

/*! The file, opened once the hook is attached (an unreachable seat still leaves an empty file,
 * as MixMonitor does): NULL if it cannot be created (the disk is full: the call goes on). */
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

/*! The lock and the condition the thread sleeps on, on the monotonic clock. */
static int init_sync(struct recording *rec)
{
	pthread_condattr_t attr;
	int res;

	if (pthread_condattr_init(&attr)) {
		return -1;
	}
	res = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (!res) {
		ast_mutex_init(&rec->lock);
		ast_cond_init(&rec->cond, &attr);
		rec->synced = 1;
	}
	pthread_condattr_destroy(&attr);
	return res ? -1 : 0;
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

/* A failure returns 0 with a warning: -1 would hang up the call, which a recording must never do. */
static int start_exec(struct ast_channel *chan, const char *data)
{
	AST_DECLARE_APP_ARGS(args, AST_APP_ARG(file); AST_APP_ARG(options); AST_APP_ARG(done););
	struct ast_flags flags = { 0 };
	char *opts[OPT_ARG_COUNT] = { NULL };
	char *parse = ast_strdupa(S_OR(data, ""));
	struct recording *rec;
	struct ast_datastore *ds;
	char id[16];
	pthread_t thread;

	AST_STANDARD_APP_ARGS(args, parse);
	if (ast_strlen_zero(args.file) || !valid_path(args.file)
		|| (!ast_strlen_zero(args.done) && !valid_path(args.done))) {
		ast_log(LOG_WARNING, "%s requires an absolute file name with an extension: not recording\n", app_start);
		return 0;
	}
	if (!ast_strlen_zero(args.options) && ast_app_parse_options(start_options, &flags, opts, args.options)) {
		ast_log(LOG_WARNING, "%s: bad options '%s': not recording\n", app_start, args.options);
		return 0;
	}

	rec = ao2_alloc(sizeof(*rec), recording_destroy);
	if (!rec) {
		ast_log(LOG_WARNING, "%s: out of memory: not recording %s\n", app_start, args.file);
		return 0;
	}
	/* released at the very end of recording_destroy, whoever drops the last reference */
	ast_module_ref(AST_MODULE_SELF);
	ast_atomic_fetchadd_int(&live, 1);
	rec->bridged_only = ast_test_flag(&flags, OPT_BRIDGED) ? 1 : 0;
	rec->path = ast_strdup(args.file);
	rec->done = ast_strlen_zero(args.done) ? NULL : ast_strdup(args.done);
	rec->autochan = ast_autochan_setup(chan);
	if (!rec->path || (!ast_strlen_zero(args.done) && !rec->done) || !rec->autochan || init_sync(rec)
		|| ast_audiohook_init(&rec->hook, AST_AUDIOHOOK_TYPE_SPY, hook_source, 0)) {
		ast_log(LOG_WARNING, "%s: cannot set up a recording of %s\n", app_start, ast_channel_name(chan));
		ao2_ref(rec, -1);
		return 0;
	}
	rec->hooked = 1;

	snprintf(id, sizeof(id), "%u", (unsigned int) ast_atomic_fetchadd_int(&next_id, 1) + 1);
	ds = ast_datastore_alloc(&recording_ds, id);
	if (!ds || ast_audiohook_attach(chan, &rec->hook)) {
		ast_log(LOG_WARNING, "%s: cannot hook %s\n", app_start, ast_channel_name(chan));
		if (ds) {
			ast_datastore_free(ds);
		}
		ao2_ref(rec, -1);
		return 0;
	}
	rec->fs = open_file(rec->path);
	ds->data = ao2_bump(rec);
	if (ast_pthread_create_detached_background(&thread, NULL, recording_thread, rec)) {
		ast_log(LOG_WARNING, "%s: cannot start the thread recording %s\n", app_start, ast_channel_name(chan));
		/* we are the channel's thread: ast_audiohook_detach() would wait for us forever */
		ast_audiohook_remove(chan, &rec->hook);
		if (rec->fs) {
			ast_closestream(rec->fs);
			rec->fs = NULL;
			unlink(rec->path);
		}
		ast_datastore_free(ds);
		ao2_ref(rec, -1);
		return 0;
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
}

static int stop_exec(struct ast_channel *chan, const char *data)
{
	struct ast_datastore *ds;
	struct recording *rec;
	struct timespec until;
	int finished;

	ast_channel_lock(chan);
	ds = ast_channel_datastore_find(chan, &recording_ds, ast_strlen_zero(data) ? NULL : data);
	if (ds) {
		ast_channel_datastore_remove(chan, ds);
	}
	ast_channel_unlock(chan);
	if (!ds) {
		return 0;
	}
	rec = ao2_bump(ds->data);
	ast_datastore_free(ds);

	/* the core stops feeding the hook; the thread, woken, writes what is left, closes and
	 * renames the file. Waited for (bounded, without the channel's lock) so that the file is
	 * finished when this returns, as after StopMixMonitor; the thread needs nothing of this
	 * channel's thread to get there */
	ast_audiohook_update_status(&rec->hook, AST_AUDIOHOOK_STATUS_SHUTDOWN);
	until = after_ms(STOP_WAIT_MS);
	ast_mutex_lock(&rec->lock);
	rec->stopping = 1;
	ast_cond_signal(&rec->cond);
	while (!rec->finished) {
		if (ast_cond_timedwait(&rec->cond, &rec->lock, &until) == ETIMEDOUT) {
			break;
		}
	}
	finished = rec->finished;
	ast_mutex_unlock(&rec->lock);
	if (!finished) {
		ast_log(LOG_WARNING, "%s: %s not finished after %d ms: it will be shortly\n", app_stop, rec->path,
			STOP_WAIT_MS);
	}
	ao2_ref(rec, -1);

	ast_channel_lock(chan);
	ast_channel_publish_blob(chan, ast_channel_mixmonitor_stop_type(), NULL);
	ast_channel_unlock(chan);
	return 0;
}

static int unload_module(void)
{
	/* the module references refuse a plain unload already; this refuses `module unload -f`
	 * too (only -h goes on, at the user's own risk) */
	if (ast_atomic_fetchadd_int(&live, 0)) {
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
