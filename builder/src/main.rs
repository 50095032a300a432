fn main() {
    std::process::exit(slipway::cli::main(std::env::args_os().collect()));
}
