//! `seeds DIR`: writes each target's seeds to DIR/<target>/ for libFuzzer to start from.

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(std::path::PathBuf::from) else {
        eprintln!("usage: seeds DIR");
        std::process::exit(2);
    };
    for target in fuzz::TARGETS {
        let d = dir.join(target);
        if let Err(e) = std::fs::create_dir_all(&d) {
            eprintln!("seeds: mkdir {}: {e}", d.display());
            std::process::exit(1);
        }
        for (i, seed) in fuzz::seeds::for_target(target).iter().enumerate() {
            if let Err(e) = std::fs::write(d.join(format!("seed-{i}")), seed) {
                eprintln!("seeds: write {}: {e}", d.display());
                std::process::exit(1);
            }
        }
    }
}
