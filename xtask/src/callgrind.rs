//! Reads callgrind's output files (`callgrind.out.*`, format version 1): the total of
//! the first event (instructions, `Ir`, when the cache simulation is off), each
//! function's own cost, and the inclusive cost of every caller-to-callee edge.
//!
//! callgrind_annotate prints the same numbers, but splits a function's cost by the
//! source file of the code inlined into it (`fi=`/`fe=`), so one Rust function shows
//! as several entries whose inclusive figures overlap; here a function is one entry,
//! whatever was inlined into it. The split by source file is kept beside it
//! ([`Profile::own_by_source`], [`Profile::calls_by_source`]): where one function holds
//! the code of several modules, it says which cost came from which (the innermost
//! inlined file only: callgrind records no chain of inlining).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context};

/// One function of a profile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Function {
    /// The source file callgrind gives for it (`fl=`), `???` without debug info.
    pub file: String,
    /// Cost of its own instructions, inlined code included.
    pub self_cost: u64,
    /// Inclusive cost of its calls to other functions (calls to itself left out).
    pub calls_cost: u64,
}

impl Function {
    /// Its own cost plus that of everything it called.
    pub fn inclusive(&self) -> u64 {
        self.self_cost + self.calls_cost
    }
}

/// The calls from one function to another.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Edge {
    /// How many calls.
    pub calls: u64,
    /// Their inclusive cost.
    pub cost: u64,
}

/// A parsed callgrind profile.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// Total of the first event over the whole run.
    pub total: u64,
    /// Functions by name (functions of the same name in several objects are merged).
    pub functions: HashMap<String, Function>,
    /// The calls from one function to another, by (caller, callee).
    pub edges: HashMap<(String, String), Edge>,
    /// Functions' own cost by the source file of the code (the function's, or that of
    /// code inlined into it), by (function, file).
    pub own_by_source: HashMap<(String, String), u64>,
    /// The inclusive cost of calls by the source file of the calling code, by (caller,
    /// file, callee); calls of a function to itself left out, as in `edges`.
    pub calls_by_source: HashMap<(String, String, String), u64>,
}

impl Profile {
    /// Reads the callgrind output file at `path`.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Parses the text of a callgrind output file.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut profile = Profile::default();
        let mut files: HashMap<String, String> = HashMap::new();
        let mut names: HashMap<String, String> = HashMap::new();
        let mut positions = 1usize;
        let mut summary = None;
        let mut totals: Option<u64> = None;
        let mut file = String::from("???");
        // The file of the cost lines that follow: the function's, or an inlined one's.
        let mut source = file.clone();
        let mut function: Option<String> = None;
        let mut callee: Option<String> = None;
        let mut in_call: Option<u64> = None;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let first = line.as_bytes()[0];
            if first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'*') {
                let cost: u64 = match line.split_ascii_whitespace().nth(positions) {
                    Some(c) => c
                        .parse()
                        .with_context(|| format!("line {}: cost {c:?}", number + 1))?,
                    None => 0,
                };
                let Some(caller) = function.as_ref() else {
                    bail!("line {}: a cost before any fn=", number + 1);
                };
                if let Some(calls) = in_call.take() {
                    let Some(target) = callee.as_ref() else {
                        bail!("line {}: calls= without cfn=", number + 1);
                    };
                    if target != caller {
                        let edge = profile
                            .edges
                            .entry((caller.clone(), target.clone()))
                            .or_default();
                        edge.calls += calls;
                        edge.cost += cost;
                        *profile
                            .calls_by_source
                            .entry((caller.clone(), source.clone(), target.clone()))
                            .or_default() += cost;
                        profile
                            .functions
                            .entry(caller.clone())
                            .or_default()
                            .calls_cost += cost;
                    }
                } else {
                    profile
                        .functions
                        .entry(caller.clone())
                        .or_default()
                        .self_cost += cost;
                    *profile
                        .own_by_source
                        .entry((caller.clone(), source.clone()))
                        .or_default() += cost;
                }
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                match key {
                    "fl" => {
                        file = resolve(&mut files, value);
                        source = file.clone();
                    }
                    "fi" | "fe" => source = resolve(&mut files, value),
                    "cfi" | "cfl" => {
                        resolve(&mut files, value);
                    }
                    "fn" => {
                        source = file.clone();
                        let name = resolve(&mut names, value);
                        let entry = profile.functions.entry(name.clone()).or_default();
                        if entry.file.is_empty() {
                            entry.file = file.clone();
                        }
                        function = Some(name);
                    }
                    "cfn" => callee = Some(resolve(&mut names, value)),
                    "calls" => {
                        let calls = value.split_ascii_whitespace().next().unwrap_or("0");
                        in_call = Some(
                            calls
                                .parse()
                                .with_context(|| format!("line {}: calls={value}", number + 1))?,
                        );
                    }
                    _ => {}
                }
                continue;
            }
            if let Some((key, value)) = line.split_once(':') {
                let value = value.trim();
                match key {
                    "positions" => positions = value.split_ascii_whitespace().count().max(1),
                    "summary" => summary = value.split_ascii_whitespace().next(),
                    "totals" => {
                        let t: u64 = value
                            .split_ascii_whitespace()
                            .next()
                            .unwrap_or("0")
                            .parse()
                            .with_context(|| format!("line {}: totals", number + 1))?;
                        *totals.get_or_insert(0) += t;
                    }
                    _ => {}
                }
            }
        }
        profile.total = match (totals, summary) {
            (Some(t), _) => t,
            (None, Some(s)) => s.parse().context("summary")?,
            (None, None) => bail!("no summary: or totals: line"),
        };
        Ok(profile)
    }

    /// The function `name`, if the profile has it.
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.get(name)
    }

    /// Inclusive cost of the calls into the set of functions matching `matches` from
    /// functions outside it: what the set costs, counted once at its entries.
    pub fn entry_cost(&self, matches: impl Fn(&str) -> bool) -> u64 {
        self.entry_cost_from(matches, |_| true)
    }

    /// As [`entry_cost`](Self::entry_cost), counting only the calls made by functions
    /// matching `from`.
    pub fn entry_cost_from(
        &self,
        matches: impl Fn(&str) -> bool,
        from: impl Fn(&str) -> bool,
    ) -> u64 {
        self.edges
            .iter()
            .filter(|((caller, callee), _)| matches(callee) && !matches(caller) && from(caller))
            .map(|(_, edge)| edge.cost)
            .sum()
    }
}

/// The name of a compressed `(id) name` or `(id)` reference, recording new ones.
fn resolve(table: &mut HashMap<String, String>, value: &str) -> String {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('(') {
        if let Some((id, name)) = rest.split_once(')') {
            let name = name.trim();
            if name.is_empty() {
                return table.get(id).cloned().unwrap_or_else(|| format!("({id})"));
            }
            table.insert(id.to_string(), name.to_string());
            return name.to_string();
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile in callgrind's compressed format: main calls work twice and helper
    /// once; work calls helper and itself.
    const SAMPLE: &str = "# callgrind format
version: 1
creator: callgrind-3.19.0
positions: line
events: Ir
summary: 1000

ob=(1) /bin/x
fl=(1) src/main.rs
fn=(1) main
10 5
cfl=(2) src/work.rs
cfn=(2) work
calls=2 20
11 700
cfn=(3) helper
calls=1 30
12 40

fl=(2)
fn=(2)
20 400
fi=(3) src/inlined.rs
+2 100
cfn=(2)
calls=1 20
21 50
cfl=(1)
cfn=(3)
calls=1 30
-1 200

fl=(1)
fn=(3)
30 240
totals: 1000
";

    #[test]
    fn functions_edges_and_totals_are_read_with_compressed_names() {
        let p = Profile::parse(SAMPLE).unwrap();
        assert_eq!(p.total, 1000);
        let main = p.function("main").unwrap();
        assert_eq!((main.self_cost, main.calls_cost), (5, 740));
        assert_eq!(main.file, "src/main.rs");
        let work = p.function("work").unwrap();
        // Inlined code counts as the function's own; the call to itself is left out.
        assert_eq!((work.self_cost, work.calls_cost), (500, 200));
        assert_eq!(work.file, "src/work.rs");
        assert_eq!(work.inclusive(), 700);
        assert_eq!(p.function("helper").unwrap().self_cost, 240);
        let edge = |a: &str, b: &str| p.edges[&(a.to_string(), b.to_string())];
        assert_eq!(
            edge("main", "work"),
            Edge {
                calls: 2,
                cost: 700
            }
        );
        assert_eq!(
            edge("work", "helper"),
            Edge {
                calls: 1,
                cost: 200
            }
        );
        assert!(!p
            .edges
            .contains_key(&("work".to_string(), "work".to_string())));
        // Self costs add up to the total.
        let selfs: u64 = p.functions.values().map(|f| f.self_cost).sum();
        assert_eq!(selfs, 5 + 500 + 240);
        // Entering {work, helper} from outside: main's two calls, once each.
        assert_eq!(p.entry_cost(|f| f == "work" || f == "helper"), 740);
        assert_eq!(p.entry_cost(|f| f == "helper"), 240);
        assert_eq!(p.entry_cost_from(|f| f == "helper", |c| c == "work"), 200);
        // By source: work's own 400 from its file, 100 from the inlined one; its call
        // to helper made from the inlined code; main's calls from main's file.
        let own = |f: &str, file: &str| p.own_by_source[&(f.to_string(), file.to_string())];
        assert_eq!(own("work", "src/work.rs"), 400);
        assert_eq!(own("work", "src/inlined.rs"), 100);
        let call = |a: &str, file: &str, b: &str| {
            p.calls_by_source[&(a.to_string(), file.to_string(), b.to_string())]
        };
        assert_eq!(call("work", "src/inlined.rs", "helper"), 200);
        assert_eq!(call("main", "src/main.rs", "work"), 700);
        let by_source: u64 = p.own_by_source.values().sum();
        assert_eq!(by_source, selfs);
    }

    #[test]
    fn a_file_without_totals_is_an_error() {
        assert!(Profile::parse("events: Ir\nfn=(1) f\n1 2\n").is_err());
        assert!(
            Profile::parse("summary: 3\n1 2\n").is_err(),
            "cost before fn="
        );
        assert_eq!(Profile::parse("summary: 3\n").unwrap().total, 3);
    }
}
