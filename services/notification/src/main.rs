fn main() -> std::process::ExitCode {
    jiesu_kit::cli::main(jiesu_notification::SERVICE, |district, clock| async move { jiesu_notification::start(&district, clock).await })
}
