fn main() -> std::process::ExitCode {
    jiesu_kit::cli::main(
        jiesu_classification::SERVICE,
        |district, clock| async move { jiesu_classification::start(&district, clock).await },
    )
}
