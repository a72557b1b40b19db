fn main() -> std::process::ExitCode {
    jiesu_kit::cli::main(jiesu_dispatch::SERVICE, |district, clock| async move { jiesu_dispatch::start(&district, clock).await })
}
