fn main() {
    std::process::exit(slipway::main(std::env::args_os().collect()));
}
