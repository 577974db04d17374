//! Building a runnable plan from a loaded configuration: every parser
//! compiled, every filter built (Lua scripts loaded), every output opened
//! for configuration, Match rules compiled. If the plan builds, the pipeline
//! runs; `--dry-run` stops here. All problems are collected, not just the
//! first.

use std::path::PathBuf;
use std::sync::Arc;

use super::router::Matcher;
use super::service::Service;
use crate::config::classic::Loaded;
use crate::config::{ConfigError, ConfigErrors, Location, Property, Section};
use crate::filter::{BuildContext, Filter};
use crate::input::SyslogSettings;
use crate::output::{Output, OutputContext};
use crate::parser::{KeyOrder, Parser, ParserRegistry};
use crate::record::reads::{KeySet, Reads};
use crate::record::RecentTags;
use crate::stats::{FilterCounters, InputCounters, OutputCounters};

pub struct InputPlan {
    pub settings: SyslogSettings,
    pub parser: Arc<Parser>,
    /// The only fields its JSON parser builds (see `record::reads`).
    pub keep: Option<KeySet>,
    /// Its JSON parser's key order, learned with `keep`.
    pub order: KeyOrder,
    pub counters: Arc<InputCounters>,
}

pub struct FilterInstance {
    pub name: String,
    pub matcher: Matcher,
    /// The matcher's verdict on the last two tags.
    pub recent: RecentTags<bool>,
    pub filter: Filter,
    pub counters: Arc<FilterCounters>,
}

pub struct OutputInstance {
    pub name: String,
    /// `None`: the output receives nothing (warned at start-up).
    pub matcher: Option<Matcher>,
    pub output: Output,
    pub counters: Arc<OutputCounters>,
}

pub struct Plan {
    pub service: Service,
    pub inputs: Vec<InputPlan>,
    pub filters: Vec<FilterInstance>,
    pub outputs: Vec<OutputInstance>,
    /// Things that work but are probably not what the user wants.
    pub warnings: Vec<String>,
    /// Each parser that builds only some fields, and which (for the
    /// start-up log): `input syslog.0, parser rfc3164: message, uri`.
    pub narrowed: Vec<String>,
}

/// Parsers every gatelog has, unless the user's files define the same name:
/// the native RFC3164 decoder, a plain JSON parser and `raw` (the line as
/// `message`).
fn builtin_parsers() -> Vec<Section> {
    let loc = Location { file: Arc::new(PathBuf::from("<built-in>")), line: 1 };
    let prop = |k: &str, v: &str| Property { key: k.into(), value: v.into(), loc: loc.clone() };
    let section = |props: Vec<Property>| Section { name: "PARSER".into(), loc: loc.clone(), props };
    vec![
        section(vec![prop("Name", "rfc3164"), prop("Format", "rfc3164")]),
        section(vec![prop("Name", "json"), prop("Format", "json")]),
        section(vec![prop("Name", "raw"), prop("Format", "raw")]),
    ]
}

pub fn build(loaded: &Loaded) -> Result<Plan, ConfigErrors> {
    let doc = &loaded.doc;
    let mut errors: Vec<ConfigError> = Vec::new();
    let mut warnings = Vec::new();

    let service = Service::from_doc(doc).map_err(|e| errors.extend(e)).ok();

    let mut parsers = ParserRegistry::new();
    errors.extend(parsers.load_sections(&loaded.parser_sections));
    let defined = parsers.names();
    let builtins: Vec<Section> = builtin_parsers()
        .into_iter()
        .filter(|s| s.value("name").is_some_and(|n| !defined.iter().any(|d| d == n)))
        .collect();
    errors.extend(parsers.load_sections(&builtins));

    let mut inputs = Vec::new();
    for (i, s) in doc.sections_named("INPUT").enumerate() {
        match s.plugin_name().as_deref() {
            Some("syslog") => match SyslogSettings::from_section(s, i) {
                Ok(settings) => {
                    let parser = match &settings.parser {
                        None => parsers.get("rfc3164"),
                        Some((name, loc)) => {
                            let p = parsers.get(name);
                            if p.is_none() {
                                let mut known = parsers.names();
                                known.sort();
                                errors.push(
                                    ConfigError::at(loc, format!("unknown parser '{name}'")).with_hint(format!(
                                        "define it in a Parsers_File (-R FILE or [SERVICE] Parsers_File); known parsers: {}",
                                        known.join(", ")
                                    )),
                                );
                            }
                            p
                        }
                    };
                    if let Some(parser) = parser {
                        inputs.push(InputPlan {
                            settings,
                            parser,
                            keep: None,
                            order: KeyOrder::default(),
                            counters: Arc::default(),
                        });
                    }
                }
                Err(e) => errors.extend(e),
            },
            Some(other) => errors.push(
                ConfigError::at(s.get("name").map(|p| &p.loc).unwrap_or(&s.loc), format!("unknown input '{other}'"))
                    .with_hint("gatelog's inputs: syslog"),
            ),
            None => errors.push(ConfigError::at(&s.loc, "[INPUT] without Name").with_hint("add 'Name syslog'")),
        }
    }

    let base_dir = doc.base_dir.as_path();
    let mut filters = Vec::new();
    for (i, s) in doc.sections_named("FILTER").enumerate() {
        let plugin = s.plugin_name().unwrap_or_default();
        let name = s.value("alias").map(str::to_owned).unwrap_or_else(|| format!("{plugin}.{i}"));
        let matcher = match Matcher::from_section(s) {
            Ok(Some(m)) => Some(m),
            Ok(None) => {
                errors.push(
                    ConfigError::at(&s.loc, format!("filter {name} has no Match"))
                        .with_hint("add 'Match *' or the tag it should apply to"),
                );
                None
            }
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let ctx = BuildContext { parsers: &parsers, base_dir, instance: &name };
        match Filter::from_section(s, &ctx) {
            Ok(filter) => {
                if let Some(matcher) = matcher {
                    filters.push(FilterInstance {
                        name,
                        matcher,
                        recent: RecentTags::default(),
                        filter,
                        counters: Arc::default(),
                    });
                }
            }
            Err(e) => errors.extend(e),
        }
    }

    let output_sections: Vec<&Section> = doc.sections_named("OUTPUT").collect();
    let zone = service.as_ref().map(|s| s.zone).unwrap_or_else(crate::zone::Zone::from_env);
    let mut outputs = Vec::new();
    for (i, s) in output_sections.iter().enumerate() {
        let plugin = s.plugin_name().unwrap_or_default();
        let name = s.value("alias").map(str::to_owned).unwrap_or_else(|| format!("{plugin}.{i}"));
        let matcher = match Matcher::from_section(s) {
            Ok(Some(m)) => Some(m),
            // Fluent Bit's special case: one input, one output, no Match → everything.
            Ok(None) if inputs.len() == 1 && output_sections.len() == 1 => Some(Matcher::all()),
            Ok(None) => {
                warnings.push(format!("{}: output {name} has no Match and receives nothing; add 'Match *'", s.loc));
                None
            }
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let ctx = OutputContext { base_dir, instance: &name, zone };
        match Output::from_section(s, &ctx) {
            Ok(output) => outputs.push(OutputInstance { name, matcher, output, counters: Arc::default() }),
            Err(e) => errors.extend(e),
        }
    }

    confine_and_warn(&inputs, &filters, &mut outputs, &mut warnings);
    let narrowed = project(&mut inputs, &mut filters, &outputs);

    if inputs.is_empty() && errors.is_empty() {
        errors.push(
            ConfigError::new(None, "the configuration has no [INPUT]").with_hint("add an [INPUT] Name syslog section"),
        );
    }
    if outputs.is_empty() && errors.is_empty() {
        warnings.push("the configuration has no [OUTPUT]: every record is counted as unrouted and discarded".into());
    }
    match service {
        Some(service) if errors.is_empty() => Ok(Plan { service, inputs, filters, outputs, warnings, narrowed }),
        _ => Err(ConfigErrors(errors)),
    }
}

/// What the filters and outputs read, whatever their Match (records
/// re-tagged by rewrite_tag run the chain again): JSON and rfc3164 parsers
/// build only these when it is not `All`.
fn reads(filters: &[FilterInstance], outputs: &[OutputInstance]) -> Reads {
    filters
        .iter()
        .map(|f| f.filter.reads())
        .chain(outputs.iter().map(|o| o.output.reads()))
        .fold(Reads::nothing(), Reads::union)
}

/// Narrow the parsers to [`reads`] when it is a list of keys; each
/// narrowed parser described.
fn project(inputs: &mut [InputPlan], filters: &mut [FilterInstance], outputs: &[OutputInstance]) -> Vec<String> {
    let max_message = inputs.iter().map(|i| i.settings.max_message).max().unwrap_or(usize::MAX);
    for f in filters.iter_mut() {
        f.filter.bound_records(max_message);
    }
    let reads = reads(filters, outputs);
    let mut narrowed = Vec::new();
    if let Reads::Keys(keys) = &reads {
        for i in inputs.iter_mut() {
            i.keep = i.parser.projection(keys);
            i.order = KeyOrder::default();
            if let Some(k) = &i.keep {
                let fields = k.names().join(", ");
                narrowed.push(format!("input {}, parser {}: {fields}", i.settings.name, i.parser.name()));
            }
        }
        for f in filters.iter_mut() {
            for (parser, fields) in f.filter.project(keys) {
                narrowed.push(format!("filter {}, parser {parser}: {}", f.name, fields.join(", ")));
            }
        }
    }
    narrowed
}

/// Tag-as-path outputs are confined to the fixed directories in front of
/// the rewrite_tag rules' NEW_TAGs; and the footguns of that pattern are
/// named (Fluent Bit runs them silently).
fn confine_and_warn(
    inputs: &[InputPlan],
    filters: &[FilterInstance],
    outputs: &mut [OutputInstance],
    warnings: &mut Vec<String>,
) {
    let mut roots = Vec::new();
    for f in filters {
        let Filter::RewriteTag(rt) = &f.filter else { continue };
        if f.matcher.describe() == "*" {
            warnings.push(format!(
                "filter {} (rewrite_tag) matches '*', so it also sees the records it re-tags; \
                 gatelog cuts such loops after a few rounds, but give it the input's tag instead",
                f.name
            ));
        }
        for rule in rt.rules() {
            let prefix = rule.new_tag().literal_prefix();
            roots.push(prefix.to_owned());
            for o in outputs.iter().filter(|o| o.output.tag_is_path()) {
                if !prefix.contains('/') {
                    warnings.push(format!(
                        "output {} writes to the file its tag names and a rewrite_tag rule of {} builds the tag \
                         from record data with no fixed directory in front: start NEW_TAG with a directory \
                         (e.g. /logs/$key) so records cannot choose where they are written",
                        o.name, f.name
                    ));
                }
                if !rule.keep() {
                    continue;
                }
                for i in inputs {
                    let original = &i.settings.tag;
                    if f.matcher.matches(original) && o.matcher.as_ref().is_some_and(|m| m.matches(original)) {
                        warnings.push(format!(
                            "rewrite_tag {} keeps the original record (KEEP true) and output {} matches its tag \
                             '{original}': every record is written twice, once into a file literally named \
                             '{original}' in the working directory (Fluent Bit does the same); set KEEP false or \
                             narrow the output's Match",
                            f.name, o.name
                        ));
                    }
                }
            }
        }
    }
    for o in outputs.iter_mut() {
        o.output.confine_tags_to(&roots);
    }
    warnings.dedup();
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::classic;
    use crate::input::handoff::Batch;
    use crate::parser::ParseContext;
    use crate::record::{Map, Record, Timestamp, Value};

    fn plan(stages: &str) -> Plan {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fluent-bit-sidecar");
        let text = format!(
            "[INPUT]\n    Name syslog\n    Tag kube.x\n    Path /tmp/never-bound.sock\n    Parser rfc3164\n\
             [FILTER]\n    Name parser\n    Match kube.*\n    Key_Name message\n    Reserve_Data true\n    Parser json\n{stages}"
        );
        let doc = classic::read_str(&text, &fixtures.join("t.conf"), &fixtures).unwrap();
        build(&classic::load(doc, &[]).unwrap()).unwrap()
    }

    /// The record the JSON parser filter (the first filter) makes of a message.
    fn parsed(p: &mut Plan) -> Vec<(String, Value)> {
        let mut fields = Map::new();
        fields.push("message", Value::from(r#"{"vhost":"a","uri":"/x","ua":"b","n":{"k":[1]},"uri":"/y"}"#));
        let rec = Record::new("kube.x".into(), Timestamp::new(0, 0), fields);
        let (mut out, mut emitted) = (Vec::new(), Vec::new());
        let ctx = ParseContext { now: Timestamp::new(0, 0), zone: crate::zone::Zone::Utc };
        p.filters[0].filter.apply(rec, &mut out, &mut emitted, &FilterCounters::default(), &ctx);
        out[0].fields.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect()
    }

    #[test]
    fn json_parsers_build_only_what_filters_and_outputs_read() {
        let mut p = plan(
            "[FILTER]\n    Name rewrite_tag\n    Match kube.*\n    Rule $vhost ^(.*)$ /logs/$1/$n['k'].log false\n\
             [OUTPUT]\n    Name file\n    Match /logs/*\n    Format template\n    Template {time} {uri} {status}\n\
             [OUTPUT]\n    Name null\n    Match kube.*\n",
        );
        assert_eq!(reads(&p.filters, &p.outputs), Reads::keys(["message", "vhost", "n", "uri", "status"]));
        assert_eq!(
            p.narrowed,
            [
                "input syslog.0, parser rfc3164: message, n, status, uri, vhost",
                "filter parser.0, parser json: message, n, status, uri, vhost"
            ]
        );
        let got = parsed(&mut p);
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        // Both `uri`s and the whole nested value; `message` itself is not kept (no Preserve_Key).
        assert_eq!(keys, ["vhost", "uri", "n", "uri"]);
        assert_eq!(got[3].1, Value::from("/y"));
    }

    /// Every file under `dir`, by relative path.
    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    todo.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().display().to_string();
                    out.push((rel, std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    /// nginx-like lines, mutated: broken JSON, duplicates, escapes, nested
    /// values, invalid UTF-8, other headers.
    fn lines(n: usize) -> Vec<Vec<u8>> {
        let mut next = crate::testing::xorshift(0x0DD5_EED5);
        let vhosts = ["shop.example.com", "api.example.com", "", "a/../b", "x\\u00e9y"];
        (0..n)
            .map(|i| {
                let vhost = vhosts[(next() % 5) as usize];
                let mut json = format!(
                    "{{\"time\":\"2026-11-23T16:30:00+09:00\",\"remote_addr\":\"10.0.0.{i}\",\"vhost\":\"{vhost}\",\
                     \"method\":\"GET\",\"uri\":\"/a?b=\\\"c\\\"&i={i}\",\"status\":{},\"n\":{{\"k\":[1,{{\"z\":null}}]}},\
                     \"request_time\":0.0{},\"user_agent\":\"Mozilla \\ud83d\\ude00\",\"uri\":\"/dup\"}}",
                    200 + next() % 300,
                    next() % 100
                )
                .into_bytes();
                match next() % 8 {
                    0 => json.truncate((next() as usize) % json.len()),
                    1 => json.insert((next() as usize) % json.len(), [b'"', b'\\', 0xff, b'{', b','][(next() % 5) as usize]),
                    _ => {}
                }
                let header: &[u8] = match next() % 4 {
                    0 => b"<190>Nov 23 16:30:00 nginx: ",
                    1 => b"<13>Nov  3 06:07:08 host-\xe9 sshd[12]: ",
                    _ => b"<190>Nov 23 16:30:00 istio-ingressgateway-7d9f nginx: ",
                };
                [header, &json].concat()
            })
            .collect()
    }

    /// The same lines through a configuration as narrowed, and with an
    /// output that reads the whole record but matches nothing (so nothing
    /// is narrowed): every file written must be identical. And narrowed
    /// again with the batches taken in groups, as the pipeline thread takes
    /// them: the same lines in every file (a file that receives records and
    /// their re-tagged copies gets them in blocks of a group rather than of
    /// a batch).
    #[test]
    fn narrowed_and_full_decoding_write_the_same_files() {
        let input = |parser: &str| {
            format!("[INPUT]\n    Name syslog\n    Tag kube.x\n    Path /tmp/never-bound.sock\n    Parser {parser}\n")
        };
        let filter = |opts: &str| {
            format!("[FILTER]\n    Name parser\n    Match kube.*\n    Key_Name message\n    Parser json\n{opts}")
        };
        let template = "time:{time}\tmethod:{method}\turi:{uri}\tstatus:{status}\tvhost:{vhost}\tn:{n}\thost:{host}\tident:{ident}\tmissing:{missing}\tmsg:{message}";
        let jobs = [
            // (b): dated template file.
            format!("{}{}[OUTPUT]\n    Name file\n    Match *\n    Path {{out}}/%Y-%m%d\n    File x.log\n    Format template\n    Template {template}\n", input("rfc3164"), filter("    Preserve_Key true\n    Reserve_Data true\n")),
            // rewrite_tag into tag-as-path files, reading a nested field in NEW_TAG.
            format!("{}{}[FILTER]\n    Name rewrite_tag\n    Match kube.*\n    Rule $vhost ^(.+)$ {{out}}/rt/$1-$n['k'][0].log false\n[OUTPUT]\n    Name file\n    Match {{out}}/rt/*\n    Format template\n    Template {{uri}} {{status}} {{request_time}} {{user_agent}}\n[OUTPUT]\n    Name file\n    Match kube.*\n    Path {{out}}\n    File rest.log\n    Format template\n    Template {{remote_addr}} {{pri}}\n", input("rfc3164"), filter("    Reserve_Data true\n")),
            // (a): a Lua function run directly, re-tagged by the field it sets.
            format!("{}{}[FILTER]\n    Name lua\n    Match kube.*\n    code function f(tag, ts, r) new_record = r new_record['log_file_path'] = os.date('%Y-%m%d', ts) .. '/a.log' return 1, ts, new_record end\n    call f\n[FILTER]\n    Name lua\n    Match kube.*\n    code function g(tag, ts, r) r.u = r.remote_addr .. '|' .. tag return 1, ts, r end\n    call g\n[FILTER]\n    Name rewrite_tag\n    Match kube.*\n    Rule $vhost ^(.+)$ lua.$log_file_path true\n[OUTPUT]\n    Name file\n    Match *\n    Path {{out}}\n    File a.log\n    Format template\n    Template {template}\tu:{{u}}\tp:{{log_file_path}}\n", input("rfc3164"), filter("    Preserve_Key true\n    Reserve_Data true\n")),
            // Without Reserve_Data; the header fields only.
            format!("{}{}[OUTPUT]\n    Name file\n    Match *\n    Path {{out}}\n    File h.log\n    Format template\n    Template {{pri}} {{host}} {{ident}} {{pid}} {{uri}}\n", input("rfc3164"), filter("")),
        ];
        let zone = crate::zone::Zone::parse("Asia/Tokyo").unwrap();
        let batches: Vec<Batch> = lines(400)
            .chunks(16)
            .map(|c| {
                let mut b = Batch::new(0);
                b.received_at = Timestamp::new(1_795_400_000, 123_456_789);
                for l in c {
                    b.push(l, None);
                }
                b
            })
            .collect();
        for (j, job) in jobs.iter().enumerate() {
            let mut written = Vec::new();
            for (full, grouped) in [(false, false), (true, false), (false, true)] {
                let dir = tempfile::tempdir().unwrap();
                let out = dir.path().join("out");
                let mut text = job.replace("{out}", &out.display().to_string());
                if full {
                    text.push_str("[OUTPUT]\n    Name stdout\n    Match no.such.tag\n");
                }
                let doc = classic::read_str(&text, &dir.path().join("g.conf"), dir.path()).unwrap();
                let p = build(&classic::load(doc, &[]).unwrap()).unwrap();
                assert_eq!(p.narrowed.is_empty(), full, "job {j}");
                let mut pipe =
                    super::super::pipeline::Pipeline::new(p.inputs, p.filters, p.outputs, zone, Default::default());
                if grouped {
                    for group in batches.chunks(5) {
                        pipe.process_all(group);
                    }
                } else {
                    for b in &batches {
                        pipe.process(b);
                    }
                }
                pipe.close();
                written.push(files(&out));
            }
            assert!(!written[0].is_empty(), "job {j} wrote nothing");
            assert_eq!(written[0], written[1], "job {j}");
            let sorted_lines = |files: &[(String, Vec<u8>)]| {
                let lines = |b: &[u8]| {
                    let mut l: Vec<Vec<u8>> = b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
                    l.sort();
                    l
                };
                files.iter().map(|(name, bytes)| (name.clone(), lines(bytes))).collect::<Vec<_>>()
            };
            assert_eq!(sorted_lines(&written[0]), sorted_lines(&written[2]), "job {j} in groups");
        }
    }

    #[test]
    fn a_lua_function_run_directly_reads_what_it_reads_and_sets() {
        let mut p = plan(
            "[FILTER]\n    Name lua\n    Match *\n    script create-log-file-path.lua\n    call create_log_file_path\n\
             [FILTER]\n    Name lua\n    Match *\n    code function f(t, ts, r) r.u = r.uri .. t return 1, ts, r end\n    call f\n\
             [OUTPUT]\n    Name null\n    Match *\n",
        );
        assert_eq!(reads(&p.filters, &p.outputs), Reads::keys(["log_file_path", "message", "u", "uri"]));
        assert_eq!(parsed(&mut p), [("uri".to_owned(), Value::from("/x")), ("uri".to_owned(), Value::from("/y"))]);
        for code in [
            // A field set that may be nil (a missing field, `os.date` of a
            // time `localtime` refuses) could leave the record empty, which
            // depends on every other field.
            "function f(t, ts, r) r.u = r.uri return 1, ts, r end",
            "function f(t, ts, r) r.d = os.date('%Y', r.t) r.t = nil return 1, ts, r end",
            // The record as the time: the VM reads its `sec` and `nsec`.
            "function f(t, ts, r) r.t = 'x' return 1, r, r end",
            // A `date` of the script's own, which may read any field.
            "util = {date = function() return cur.a end} function f(t, ts, r) cur = r r.x = util.date('%Y', ts) .. '' return 1, ts, r end",
        ] {
            let p = plan(&format!(
                "[FILTER]\n    Name lua\n    Match *\n    code {code}\n    call f\n[OUTPUT]\n    Name null\n    Match *\n"
            ));
            assert_eq!(reads(&p.filters, &p.outputs), Reads::All, "{code}");
        }
    }

    #[test]
    fn one_stage_reading_the_whole_record_decodes_everything() {
        for stages in [
            "[OUTPUT]\n    Name stdout\n    Match *\n",
            "[OUTPUT]\n    Name file\n    Match *\n    Format plain\n",
            // A branch: the VM runs it, and it may look at any field.
            "[FILTER]\n    Name lua\n    Match *\n    code function f(t, ts, r) if r.a then r.b = 1 end return 1, ts, r end\n    call f\n\
             [OUTPUT]\n    Name null\n    Match *\n",
        ] {
            let mut p = plan(stages);
            assert_eq!(reads(&p.filters, &p.outputs), Reads::All, "{stages}");
            assert!(p.narrowed.is_empty());
            assert_eq!(parsed(&mut p).len(), 5, "{stages}");
        }
    }
}
