fn main() {
    eprintln!("slipway: not yet implemented");
    std::process::exit(1);
}
