"""Config files and settings: YAML, the environment, secrets, ports, generated Asterisk files."""

from __future__ import annotations

from ivr.core.reasons_zh._shared import PID, Fields, Kinds, gap, kinds, q

_PORT_OWNER = {"console": "控制台", "FastAGI": "FastAGI "}
_ROLE = {"agent": "座席", "supervisor": "督导"}


def _calendar(f: Fields) -> str:
    what = (f"{f['year']} 年节假日日历为暂定（仅含法定假日，未含调休）" if f["year"]
            else f"{f['none']} 年节假日日历无数据（仅按周末计算）")
    return f"{what}：跨入该年的工单办理期限为暂定，按工作日分支的流程可能有误；请升级 chinesecalendar（{f['span']}）或更新 {f['file']}"


def _port(f: Fields) -> str:
    state = "已被占用" if f["used"] else "无法打开"
    return f"{_PORT_OWNER[f['owner']]}端口 {f['addr']} {state}（{f['key']} 设于 {f['origin']}）"


KINDS: Kinds = kinds(
    ("unknown_key", PID + r"unknown key " + q("key") + r"(?: \(expected (?P<exp>.+)\))?", "{pid}未知的配置项 {key}{exp}"),
    ("missing_key", r"missing key " + q("key") + r" in (?P<where>.+)", "{where}缺少配置项 {key}"),
    ("anchor", r"(?:anchor|alias) (?P<name>[&*]\S+) is not allowed: .*", "不允许使用 YAML 锚点或别名 {name}：请直接写出取值"),
    ("line_break_value", r"(?P<name>[\w.\[\]-]+): (?:Value error, )?(?:\w+ )?(?P<value>'.*'…?|\".*\"…?): "
                         r"control or line-break character (?P<code>U\+[0-9A-F]{4}) is not allowed.*",
     "{name}：取值 {value} 含有控制字符或换行符 {code}，不允许"),
    ("line_break", r"(?P<name>.+?): control or line-break character (?P<code>U\+[0-9A-F]{4}) is not allowed.*",
     "{name}：不允许控制字符或换行符 {code}"),
    ("control", r"control character U\+(?P<code>\S+) not allowed", "不允许控制字符 U+{code}"),
    ("one_line", r"one line", "只能填写一行"),
    ("no_plan", PID + r"number plan " + q("plan") + r" not found in (?P<dir>\S+) \(there: (?P<known>.*)\)",
     lambda f: f"{f['pid']}号码计划 {f['plan']} 不存在（{f['dir']} 中现有：{'无' if f['known'] == 'none' else f['known']}）"),
    ("too_big", r"file is (?P<size>\d+) bytes, more than (?P<max>\d+): refused", "文件 {size} 字节，超过上限 {max} 字节：已拒绝"),
    ("too_many", r"more than (?P<max>\d+) values in one file: refused", "单个文件超过 {max} 个取值：已拒绝"),
    ("not_utf8", r"not UTF-8 text: .*", "不是 UTF-8 文本"),
    ("syntax", r"YAML(?: syntax)?: (?P<err>.*)", "YAML 语法错误：{err}"),
    ("key_text", r"a key must be text, not (?P<key>.*)", "配置项名必须是文字，不能是 {key}"),
    ("defined", q("v") + r" is already defined in (?P<file>.+)", "{v} 已在 {file} 中定义"),
    ("no_dir", r"config directory (?P<dir>.+) does not exist", "配置目录 {dir} 不存在"),
    ("env", r"environment (?P<var>\S+): unknown setting \(known: (?P<known>.*)\)", "环境变量 {var}：未知的设置（可选：{known}）"),
    ("unset", r"(?:(?P<var>[A-Z][A-Z0-9_]+)|(?P<file>\S+)) is not set(?: \(.*\))?",  # a variable, or a key file left empty
     lambda f: f"环境变量 {f['var']} 未设置" if f["var"] else f"{f['file']} 未设置"),
    ("short_key", r"(?P<var>\S+) is too short: use at least (?P<n>\S+) random characters \(e\.g\. (?P<cmd>`[^`]+`)\)",
     "{var} 过短：至少应为 {n} 个随机字符（例如 {cmd}）"),
    ("caller_key", r"missing caller key: set (?P<var>\S+) \(at least (?P<n>\S+) random characters, the same on every "
                   r"engine sharing Redis; never kept in config/\)",
     "未设置来电号码密钥：请设置 {var}（至少 {n} 个随机字符，共用同一 Redis 的各引擎须相同；不得写入 config/）"),
    ("ami_secret", r"missing AMI secret: set (?P<var>\S+) \(never kept in config/\)", "未设置 AMI 密码：请设置 {var}（不得写入 config/）"),
    ("ami_user", r"no secret for the AMI user " + q("v") + r": set (?P<var>\S+) \(the one Asterisk's manager\.conf has\)",
     "AMI 用户 {v} 未设置密码：请设置 {var}（与 Asterisk 的 manager.conf 中一致）"),
    ("sip_password", r"(?P<role>agent|supervisor) (?P<v>\S+): no SIP password \(set (?P<var>\S+)\)",
     lambda f: f"{_ROLE[f['role']]} {f['v']}：未设置 SIP 密码（请设置 {f['var']}）"),
    ("port", r"(?P<owner>console|FastAGI) port (?P<addr>\S+) (?:(?P<used>is already in use)|cannot be opened "
             r"\((?P<rest>[^)]*)\)) \((?P<key>web\.port|agi\.port) from (?P<origin>.+)\)", _port),
    ("media_address", r"sip\.bind is (?P<v>.+): set sip\.media_address to this server's address for RTP \(otherwise "
                      r"Asterisk looks up its own host name and A\.ROOT-SERVERS\.NET on every call\)",
     lambda f: f"sip.bind 为 {'空' if f['v'] == 'empty' else f['v']}：请将 sip.media_address 设为本服务器的 RTP 地址"
               "（否则 Asterisk 每次呼叫都会查询自身主机名和 A.ROOT-SERVERS.NET）"),
    ("no_cluster", r"node " + q("v") + r": there is no cluster section in config/, so no nodes",
     "节点 {v}：config/ 中没有 cluster 段，因此没有节点"),
    ("which_node", r"name the cluster node to render Asterisk's files for \(--node: one of (?P<known>.*)\)",
     "请指定要为其生成 Asterisk 配置文件的集群节点（--node：可选 {known}）"),
    ("not_in_cluster", r"node " + q("v") + r" is not in the cluster \(there: (?P<known>.*)\)", "节点 {v} 不在集群中（现有：{known}）"),
    ("extra_file", r"no such extra file to render: (?P<v>.+) \(only (?P<known>.+)\)", "没有可生成的附加文件 {v}（仅有 {known}）"),
    ("render", r"refused to render Asterisk's configuration: (?P<inner>.*)", "已拒绝生成 Asterisk 配置：{inner}"),
    ("sentinels", r"redis\.sentinel_service is set but redis\.sentinels names no sentinel",
     "已设置 redis.sentinel_service，但 redis.sentinels 未列出任何 Sentinel"),
    ("sentinel_url", r"a Sentinel target has no URL", "Sentinel 目标没有 URL"),
    ("calendar", r"holiday calendar (?:for (?P<year>\d{4}) is provisional \(statutory days only, no 调休\)"
                 r"|has no data for (?P<none>\d{4}) \(weekends only\)): ticket deadlines that run into \d{4} "
                 r"are provisional and working-day branches may be off; upgrade chinesecalendar "
                 r"\((?P<span>.*)\) or update (?P<file>\S+)", _calendar),
    ("bad_range", r"(?P<name>.+): bad range (?P<first>.+)\.\.(?P<last>.+)", "{name}：日期范围 {first}..{last} 无效"),
    ("not_a", r"not an? (?P<what>IP address or network|purpose|ticket number): (?P<v>.+)", lambda f: f"{f['v']} 不是{gap(f['what'])}"),
    ("qualify", r"qualify timeout (?P<t>\S+) s must be shorter than its interval \((?P<every>\S+) s\)",
     "qualify 超时 {t} 秒应短于检测间隔（{every} 秒）"),
    ("turn_unreadable", r"(?P<label>\S+) is unreadable \(phones\.web\.turn_secret\): (?P<rest>.*)",
     "{label} 无法读取（phones.web.turn_secret）"),
    ("ice_userinfo", q("v") + r": no user or password in an ICE server's URL \(TURN credentials come from turn_secret\)",
     "{v}：ICE 服务器的地址中不得写用户名或密码（TURN 凭据由 turn_secret 生成）"),
    ("ice_url", q("v") + r" is not stun:host\[:port\], turn:host\[:port\]\[\?transport=udp\|tcp\] or turns:…",
     "{v} 不是有效的 STUN/TURN 服务器地址（应写作 stun:主机[:端口]、turn:主机[:端口][?transport=udp|tcp] 或 turns:…）"),
    ("ice_transport", q("v") + r": \?transport= is for turn: and turns: only", "{v}：?transport= 只能用于 turn: 与 turns: 服务器"),
    ("ice_port", q("v") + r": port (?P<port>\S+) is not 1-65535", "{v}：端口 {port} 不在 1–65535 之间"),
    ("turn_needs_secret", r"a turn: or turns: server needs turn_secret \(the secret shared with the TURN server\)",
     "turn: 或 turns: 服务器需要设置 turn_secret（与 TURN 服务器共用的密钥）"),
    ("turn_secret_unused", r"turn_secret is set but ice_servers names no turn: or turns: server",
     "已设置 turn_secret，但 ice_servers 中没有 turn: 或 turns: 服务器"),
    ("turn_one_source", r"turn_secret names one source: \{env: VARIABLE\} or \{file: /path\}",
     "turn_secret 须且只须指定一个来源：{{env: 变量名}} 或 {{file: /路径}}"),
    ("ws_path", q("v") + r" is not a path of letters, digits and _ \. / -", "{v} 不是仅由字母、数字和 _ . / - 组成的路径"),
    ("dtls_pair", r"dtls_cert and dtls_key go together \(or neither: a generated certificate\)",
     "dtls_cert 与 dtls_key 须同时设置（或都不设置：由 Asterisk 生成证书）"),
    ("at_least", r"(?P<name>\w+) must be at least (?P<n>\S+)", "{name} 应不小于 {n}"),
    ("https", r"unmasked_caller sends caller numbers in full: the url must be https:// \(or set plain_http: true for a "
              r"trusted local hop\)", "unmasked_caller 会发送完整的来电号码：url 必须为 https://（可信的本机转发可设 plain_http: true）"),
    ("key_source", r"name exactly one of key_env \(an environment variable\) or key_file \(a file outside the repo\)",
     "key_env（环境变量）与 key_file（仓库外的文件）须设置且只设置一项"),
    ("top_level", r"top level must be a mapping", "顶层应为键值表"),
    ("mapping", PID + r"(?P<key>\w+) must be a mapping", "{pid}{key} 应为键值表"),
    ("date", r"(?P<v>'[^']*'|\S+) is not a valid date or value: (?P<rest>.*)", "{v} 不是有效的日期或取值"),
    ("duration", q("v") + r" is not a duration \(write e\.g\. 3s, 1\.5s or 800ms\)", "{v} 不是时长（应写作 3s、1.5s 或 800ms）"),
    ("time_range", q("v") + r" is not a time range like 08:30-17:30", "{v} 不是时间段（应写作 08:30-17:30）"),
    ("percent", r"(?P<n>\S+) is not between 0 and 99", "{n} 不在 0 到 99 之间"),
    ("duplicate", r"duplicate key " + q("v") + r" \(first defined at line (?P<line>\S+)\)", "重复的配置项 {v}（第 {line} 行已定义）"),
    ("regex", r"(?:callable is )?not a valid regular expression: (?P<rest>.*)", "不是有效的正则表达式"),
)
