//! The stage graph: what each stage starts from and which stages it copies from, so that a
//! build runs only the stages its target needs. Pure data; builds nothing.

use crate::dockerfile::shell::{Env, Lexer};
use crate::instructions::{Instruction, Stages};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    Stage(usize),
    Image(String),
}

#[derive(Debug, Clone)]
pub struct Graph {
    pub bases: Vec<Base>,
    pub names: Vec<Option<String>>,
    pub deps: Vec<Vec<usize>>,
}

/// Resolves a `FROM` reference seen in stage `cur` to an earlier stage: the last one of that
/// name before it (BuildKit's `addState` looks the name up as each stage is added).
pub fn stage_ref(names: &[Option<String>], cur: usize, r: &str) -> Option<usize> {
    let l = r.to_ascii_lowercase();
    names[..cur.min(names.len())].iter().rposition(|n| n.as_deref() == Some(l.as_str()))
}

/// The stage a name means once all are read (`COPY --from`, `--target`): the last one of that
/// name (BuildKit's `findStateByName`).
pub fn last_named(names: &[Option<String>], r: &str) -> Option<usize> {
    let l = r.to_ascii_lowercase();
    names.iter().rposition(|n| n.as_deref() == Some(l.as_str()))
}

impl Graph {
    pub fn new(stages: &Stages, lex: &Lexer, meta: &dyn Env) -> Result<Graph, (usize, String)> {
        let names: Vec<Option<String>> = stages.stages.iter().map(|s| s.name.clone()).collect();
        let mut bases = Vec::new();
        let mut deps = Vec::new();
        for (i, s) in stages.stages.iter().enumerate() {
            let b = lex.process_word(&s.base, meta).map_err(|e| (s.line, e.0))?;
            if b.is_empty() {
                return Err((s.line, "FROM: base name should not be blank".into()));
            }
            let mut d = Vec::new();
            let base = if let Some(j) = stage_ref(&names, i, &b) {
                d.push(j);
                Base::Stage(j)
            } else if b.eq_ignore_ascii_case("scratch") {
                Base::Scratch
            } else {
                Base::Image(b)
            };
            // BuildKit's name for the stage in messages
            let me = s.name.clone().unwrap_or_else(|| format!("stage-{i}"));
            for c in &s.commands {
                // COPY --from and RUN --mount from= name the stages a stage reads
                let froms: Vec<(String, Option<String>)> = match &c.inst {
                    Instruction::Copy(a) => a.from.iter().map(|f| (f.clone(), None)).collect(),
                    Instruction::Run { mounts, .. } => mounts
                        .iter()
                        .filter_map(|m| {
                            let f = crate::runmount::raw_from(m).ok().flatten()?;
                            Some((f, Some(crate::runmount::raw_target(m))))
                        })
                        .collect(),
                    _ => continue,
                };
                for (f, target) in froms {
                    let f = lex.process_word(&f, meta).map_err(|e| (c.line, e.0))?;
                    let j = match f.parse::<usize>() {
                        Ok(n) => Some(n),
                        Err(_) => last_named(&names, &f),
                    };
                    let Some(j) = j else { continue };
                    // BuildKit dispatches stages in file order and refuses a source not yet
                    // dispatched (0615bb4b9, "dockerfile: validate order when linking stages")
                    if j >= i {
                        return Err((
                            c.line,
                            match target {
                                None => format!(
                                    "cannot copy from stage {f:?}, it needs to be defined before current stage {me:?}"
                                ),
                                Some(t) => format!(
                                    "cannot mount from stage {f:?} to {t:?}, stage needs to be defined before current command"
                                ),
                            },
                        ));
                    }
                    d.push(j);
                }
            }
            bases.push(base);
            deps.push(d);
        }
        Ok(Graph { bases, names, deps })
    }

    /// A stage by name or index.
    pub fn stage_index(&self, t: &str) -> Option<usize> {
        last_named(&self.names, t).or_else(|| t.parse::<usize>().ok().filter(|&i| i < self.names.len()))
    }

    /// The stages `target` needs, itself included, in build order.
    pub fn needed(&self, target: usize) -> Vec<usize> {
        let mut seen = vec![false; self.bases.len()];
        let mut stack = vec![target];
        while let Some(i) = stack.pop() {
            if seen[i] {
                continue;
            }
            seen[i] = true;
            stack.extend(self.deps[i].iter().copied());
        }
        (0..seen.len()).filter(|&i| seen[i]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parser::parse;
    use crate::dockerfile::shell::NoEnv;
    use crate::instructions::stages;

    #[test]
    fn only_needed_stages() {
        let df = parse(
            "FROM scratch AS a\nFROM scratch AS unused\nFROM a AS b\nCOPY --from=0 x y\nFROM busybox\nCOPY --from=b p q\n",
        )
        .unwrap();
        let s = stages(&df).unwrap();
        let g = Graph::new(&s, &Lexer::new('\\'), &NoEnv).unwrap();
        assert_eq!(g.bases[2], Base::Stage(0));
        assert_eq!(g.bases[3], Base::Image("busybox".into()));
        assert_eq!(g.needed(3), [0, 2, 3]);
        assert_eq!(g.needed(1), [1]);
        assert_eq!(g.stage_index("B"), Some(2));
        assert_eq!(g.stage_index("nope"), None);
        // RUN --mount from= is a dependency too
        let df =
            parse("FROM scratch AS a\nFROM scratch AS b\nFROM busybox\nRUN --mount=from=b,target=/b true\n").unwrap();
        let g = Graph::new(&stages(&df).unwrap(), &Lexer::new('\\'), &NoEnv).unwrap();
        assert_eq!(g.needed(2), [1, 2]);
    }

    #[test]
    fn a_name_two_stages_have_means_the_last() {
        // BuildKit (testDuplicateStageName builds): FROM takes the last stage of the name before
        // it; COPY --from and --target the last of all
        let df = parse(
            "FROM scratch AS a\nFROM scratch AS a\nFROM a AS b\nFROM busybox AS a\nFROM scratch\nCOPY --from=a x y\n",
        )
        .unwrap();
        let g = Graph::new(&stages(&df).unwrap(), &Lexer::new('\\'), &NoEnv).unwrap();
        assert_eq!(g.bases[2], Base::Stage(1));
        assert_eq!(g.stage_index("a"), Some(3));
        assert_eq!(g.needed(4), [3, 4]);
        // a later stage of the name than the one copying from it: refused as any later stage
        let df = parse("FROM scratch AS a\nFROM scratch\nCOPY --from=a x y\nFROM scratch AS a\n").unwrap();
        let e = Graph::new(&stages(&df).unwrap(), &Lexer::new('\\'), &NoEnv).unwrap_err();
        assert_eq!(
            e,
            (3, "cannot copy from stage \"a\", it needs to be defined before current stage \"stage-1\"".to_string())
        );
    }

    #[test]
    fn global_args_in_from() {
        let df = parse("ARG BASE=scratch\nFROM ${BASE}\n").unwrap();
        let s = stages(&df).unwrap();
        let env = vec![("BASE".to_string(), "scratch".to_string())];
        let g = Graph::new(&s, &Lexer::new('\\'), &env).unwrap();
        assert_eq!(g.bases[0], Base::Scratch);
    }
}
