//! The CI smoke of every fuzz target: its seeds, then deterministic mutations of them (bit flips,
//! byte inserts and deletes, splices, truncations). `make fuzz` is the real, coverage-guided run.

/// xorshift64*: a fixed, dependency-free sequence, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\\",
    b"$",
    b"${",
    b"}",
    b"\"",
    b"'",
    b"\n",
    b"<<EOF\n",
    b"../",
    b"/",
    b"**",
    b"!",
    b"[",
    b":-",
    b"{",
    b"[]",
    b"\xff",
    b"99999999999999999999",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 if at < v.len() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at..end);
            }
            3 => {
                let word = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(at..at, word.iter().copied());
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(64)).min(other.len());
                v.splice(at..at, other[from..to].iter().copied());
            }
            _ => v.truncate(at),
        }
    }
    v
}

fn smoke(target: &str, run: fn(&[u8]), rounds: usize) {
    let seeds = fuzz::seeds::for_target(target);
    assert!(!seeds.is_empty(), "{target}: no seeds");
    for s in &seeds {
        run(s);
    }
    let mut rng = Rng(0x5eed_0000 ^ target.len() as u64);
    let mut current = seeds[0].clone();
    for i in 0..rounds {
        let base = if i % 8 == 0 { seeds[rng.below(seeds.len())].clone() } else { current };
        current = mutate(&mut rng, &seeds, &base);
        run(&current);
    }
}

#[test]
fn config_json() {
    smoke("config", fuzz::config, 3000);
}

#[test]
fn dockerfile() {
    smoke("dockerfile", fuzz::dockerfile, 3000);
}

#[test]
fn shell_word() {
    smoke("shell_word", fuzz::shell_word, 5000);
}

#[test]
fn dockerignore() {
    smoke("dockerignore", fuzz::dockerignore, 5000);
}

#[test]
fn tar_extract() {
    smoke("tar_extract", fuzz::tar_extract, 400);
}

#[test]
fn tar_load() {
    smoke("tar_load", fuzz::tar_load, 400);
}

#[test]
fn estargz() {
    smoke("estargz", fuzz::estargz, 1500);
}

/// Every input `make fuzz` ever found (fuzz/regressions/<target>/), run again. A timeout found
/// there (exponential matching) would hang this test, which CI's time limit then reports.
#[test]
fn regressions_stay_fixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut ran = 0;
    for name in fuzz::TARGETS {
        let run = fuzz::target(name).expect("every listed target has a function");
        let Ok(rd) = std::fs::read_dir(dir.join(name)) else { continue };
        for e in rd.flatten() {
            run(&std::fs::read(e.path()).expect("read regression input"));
            ran += 1;
        }
    }
    assert!(ran > 0, "no regression inputs under {}", dir.display());
}
