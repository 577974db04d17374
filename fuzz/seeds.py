#!/usr/bin/env python3
"""Write the seed corpora under fuzz/corpus/<target>/ (run from anywhere).

Seeds are small, hand-picked inputs that reach each parser's branches; the
fuzzer mutates them. Re-running rewrites the seed-NN files only, so inputs a
fuzzer added (named by their hash) are kept.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

NGINX = ('{"time":"2026-11-23T16:30:00+09:00","remote_addr":"10.0.0.1","vhost":"example.com",'
         '"method":"GET","uri":"/a?b=c","status":200,"body_bytes_sent":612,"request_time":0.005,'
         '"user_agent":"curl/8.0","request_id":"req-1","seq":1}')

SEEDS = {
    "rfc3164": [
        "<190>Nov 23 16:30:00 ingress-7c9f nginx: " + NGINX,
        "<190>Nov 23 16:30:00 nginx: " + NGINX + "\n",
        "<190>Nov  3 06:07:08 web-1 nginx: {\"a\":\"b\"}\r\n",
        "Nov 03 16:30:00 host sshd[1234]: Accepted  key\r\n",
        "<13>2024-11-23T16:30:00.123+09:00 host app[7]: rfc3339 stamp",
        "<13>2024-11-23 16:30:00Z host app: space T",
        "<0>Jan  1 00:00:00 h t:",
        "<191>Dec 31 23:59:60.999999999999 h t: leap",
        "<190>Nov 23 16:30:00",
        "<190>Nov 23 16:30:00 ",
        "<190>Nov 23 16:30:00 hostonly message without tag",
        "<190>Nov 23 16:30:00 h [1]: empty ident",
        "<190>Nov 23 16:30:00 h nginx[x]: not a pid",
        "<190>nov 23 16:30:00 h nginx: lower month",
        "<1000>Nov 23 16:30:00 h nginx: pri too long",
        "<190>Feb 31 16:30:00 h nginx: impossible date",
        "<190>Nov 23 24:30:00 h nginx: bad hour",
        "<190>Nov 23 16:30:00 h nginx: \xff\xfe invalid utf8",
        "<190>Nov 23 16:30:00 h nginx: line\nbreak inside",
        "garbage without a header",
        "",
        "<190>",
        "<190>2024-13-01T00:00:00 h t: bad month",
        "<190>2024-11-23T16:30:00+99:99 h t: bad offset",
    ],
    "json": [
        NGINX,
        '{}', ' { } ', '{"a":1}', '{"a":-0,"b":-0.0,"c":1e5,"d":1E-300,"e":123456789012345678901234567890}',
        '{"n":9223372036854775807,"m":-9223372036854775808,"o":9223372036854775808}',
        '{"s":"\\u0000\\u001f\\u007f\\"\\\\\\/\\b\\f\\n\\r\\t"}',
        '{"pair":"\\ud83d\\ude00","lone":"\\ud800","low":"\\udc00x"}',
        '{"raw":"\xff\xfe","utf8":"日本語"}',
        '{"a":[1,2.5,"x",true,false,null,{"b":[]}],"a":"dup"}',
        '{"deep":' + '[' * 70 + ']' * 70 + '}',
        '{"deep":' + '{"a":' * 63 + '1' + '}' * 63 + '}',
        '[1,2]', '"str"', '42', '{"a":1} trailing', '{"a":', '{"a" 1}', '{"a":01}', '{"a":.5}',
        '{"a":1.}', '{"a":tru}', '\t\r\n{"ws" : [ 1 , 2 ] }\n',
        '{"f":0.1,"g":1.7976931348623157e308,"h":5e-324,"i":3.0}',
    ],
    "regex": [
        "^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \\[(?<time>[^\\]]*)\\] \"(?<method>\\S+)(?: +(?<path>[^ ]*) +\\S*)?\" (?<code>[^ ]*) (?<size>[^ ]*)$\n"
        "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /a.gif HTTP/1.0\" 200 2326",
        "^\\<(?<pri>[0-9]+)\\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<host>[^ ]*) (?<ident>[a-zA-Z0-9_\\/\\.\\-]*)(?:\\[(?<pid>[0-9]+)\\])?(?:[^\\:]*\\:)? *(?<message>.*)$\n"
        "<190>Nov 23 16:30:00 h nginx: {\"a\":1}",
        "^(?<message>.*)$\nanything \xff",
        "(?<a>x)?(?<b>y)\ny",
        "(?<e>)\nempty group",
        "(?<key>\\h+)\nff00",
        "\\A(?<all>.*)\\z\nline",
        "(?<n>\\d+)\nabc123",
        "(?<bad\nunclosed group",
        "[\nunclosed class",
        "(?<x>a)(?<x>b)\nab",
        "(?i)(?<w>HELLO)\nhello",
        "(?m)(?<all>.+)\nmulti\nline",
        "(?<u>\\p{Han}+)\n日本",
        "no groups\nno groups",
        "(?<z>a{1000})\naaaa",
        "\\k<n>(?<n>a)\na",
        "(?<lazy>.*?)end\nxxend",
        "(?<o>[[:alpha:]]+)\nabc",
        "(?<time>[^ ]+) (?<msg>.*)\n2024-11-23T16:30:00Z hi",
    ],
    "ltsv": [
        "host:127.0.0.1\tident:-\treq:GET /a:b HTTP/1.1\tbad\t:x\r\nnext:line",
        "time:[23/Nov/2024:16:30:00 +0900]\thost:10.0.0.1\tstatus:200\tsize:612",
        "a:\tb:\t:c", "k:\xff\xfe", "no pairs here", "", "\t\t", "a:b\r\r", "a:b\r", "x:y:z",
        "日本:語\tk:v", "a:1\na:2", ":", "a::", "k:v\t\tk:v2",
    ],
    "logfmt": [
        'level=info msg="hello world" count=3 ok',
        'a= b="" c="x\\"y" d="back\\\\slash" e="other\\escape"',
        'unterminated="abc', 'k=v\nk2=v2', '=v', '"quoted', 'a==b', 'x=\xff\xfe', 'bare another',
        '   ', '', 'ts=2024-11-23T16:30:00Z at=info method=GET path=/ status=200',
        'k="multi\nline"', 'k=v"x', 'a=1 a=2',
    ],
    "config": [
        "[SERVICE]\n    Flush 1\n    Grace 5\n\n[INPUT]\n    Name syslog\n    Path /tmp/x.sock\n",
        "[INPUT]\n    Name         syslog\n    Mode         unix_udp\n    Path         ${GATELOG_SOCKET:-./gatelog.sock}\n",
        "[FILTER]\n\tName\tparser\n\tMatch\tnginx\n\tKey_Name message\n",
        "[OUTPUT]\n    Name file\n    Match *\n    Template {time}\t{message}\n",
        "@SET a=b\n[SERVICE]\n    Flush ${a}\n",
        "@SET broken\n", "[UNKNOWN]\n    Key value\n", "[SERVICE\n", "    Orphan value\n",
        "[SERVICE]\nNoIndent value\n", "[SERVICE]\n    Key\n", "[SERVICE]\n  Flush 1\n    Grace 5\n",
        "# comment\n\n   \n[SERVICE]\n    # indented comment\n    Flush 1\n",
        "[SERVICE]\n    Flush ${UNSET_VAR_GATELOG_FUZZ}\n", "[SERVICE]\n    Flush ${\n", "[]\n", "[INPUT]\r\n    Name syslog\r\n",
        "\xff\xfe[SERVICE]\n", "[PARSER]\n    Name p\n    Format regex\n    Regex ^(?<a>.*)$\n",
        "[MULTILINE_PARSER]\n    name m\n", "@SET\n", "@UNKNOWN x\n", "[SERVICE]\n    Flush 1 \n    Flush 2\n",
    ],
    "template": [
        "{time} {message}", "{time}\t{vhost}\t{uri}", "{{x}", "{a{b}", "}{", "{unclosed", "{}", "{t}", "{tim}",
        "{timex}", "no placeholders", "", "{a}{b}{c}", "}}}{{{", "{\n}", "tab\there", "{日本}", "{ time }",
        "{message} {message}", "\xff{\xfe}", "{status}:{request_time}",
    ],
    "accessor": [
        "$vhost", "vhost", "$a['b']['c']", "$a[0]", "$a[ 'b' ][ 1 ]", '$a["b"]', "$a['b'", "$a[b]", "$", "",
        "$a-b_c@d", "$a['x]y']", "$a[99999999999999999999]", "$a['']", "$a[0][1]['k']", "$日本", "$a rest",
        "$a['it''s']", "$a[-1]", "$a[ ]",
    ],
    "rewrite_rule": [
        "$vhost ^(.*)$ /log/output/path/$vhost.log false",
        "$vhost ^(.*)$ /log/$1/$TAG.log true", "$a['b'] ^x(\\d+)$ new.$TAG[1].$1 on", "$k ^(.*)$ $k off",
        "$k (unclosed x false", "$k ^a$ x maybe", "only three tokens", "", "$k ^a$ x false extra",
        "$k \\h+ tag false", "$k (?<name>a) $name false", "$k ^(.*)$ $TAG[x] false", "$k ^(.*)$ $TAG[1 false",
        "$k[0] . lit$ false", "$k ^(?i)A$ $0 true", "k ^a$ ${x} false",
    ],
    "path_confinement": [
        "good.example", "../../etc/evil", "/abs", "%2e%2e", "a" * 300, "nul\x00byte", "x/../../../y", "..",
        ".", "./x", "a//b", "a/./b", "dir/", "-", "日本.example", "\xff\xfe", "line\nbreak", "tab\tch",
        "a/" * 20 + "deep", "..." , ".. /x", "x/..", "x/..hidden",
    ],
    "record_path": [
        "<190>Nov 23 16:30:00 ingress-7c9f nginx: " + NGINX,
        "<190>Nov 23 16:30:00 nginx: " + NGINX,
        "<190>Nov 23 16:30:00 h nginx: {\"broken\": ",
        "<190>Nov 23 16:30:00 h nginx: {\"nul\":\"a\\u0000b\",\"raw\":\"\xff\xfe\"}",
        "<190>Nov 23 16:30:00 h nginx: \x00\x01\x02",
        "<190>Nov 23 16:30:00 h nginx: {\"message\":\"inner\",\"vhost\":\"v\\nnewline\"}",
        "<190>Nov 23 16:30:00 h nginx: {\"host\":\"dup\",\"time\":1}",
        "<190>Nov 23 16:30:00 h nginx: [1,2]",
        "<190>Nov 23 16:30:00 h nginx: ",
        "<190>Nov 23 16:30:00 h nginx: {}",
        "<190>Nov 23 16:30:00 h nginx: {\"a\":{\"b\":[1,{\"c\":null}]}}",
        "<190>Nov 23 16:30:00 h nginx: {\"status\":200,\"vhost\":\"x\"}\n",
        "not syslog at all",
        "<190>2024-11-23T16:30:00+09:00 h nginx: {\"f\":1.5e300}",
    ],
    "stock_syslog": [
        "<190>Nov 23 16:30:00 istio-gw nginx: " + NGINX,
        "<190>Nov  3 16:30:00 nginx: " + NGINX,
        "<13>Nov 23 16:30:00 host app[42]: msg: with: colons",
        "<13>Nov 23 16:30:00 host app[x]: c",
        "<13>Nov  3 16:30:00 host\n<14>Nov 3 16:30:01 h2 a: b",
        "junk\n<13>Nov 23 16:30:00 h a:   spaced",
        "<13>Nov   3 16:30:00 h a: three spaces",
        "<13>Nov 23 16:30:00 h a b c d",
        "<13>Nov 23 16:30:00 \xe3\x81\x82 \xff[1]: x",
        "<1>",
    ],
}


def main():
    for target, seeds in SEEDS.items():
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for i, s in enumerate(seeds):
            data = s.encode("latin-1") if all(ord(c) < 256 for c in s) else s.encode("utf-8")
            with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
