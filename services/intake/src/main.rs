fn main() -> std::process::ExitCode {
    jiesu_kit::cli::main(jiesu_intake::SERVICE, |district, clock| async move { jiesu_intake::start(&district, clock).await })
}
