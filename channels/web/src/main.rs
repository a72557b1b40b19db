fn main() -> std::process::ExitCode {
    jiesu_kit::cli::main(jiesu_web::NAME, |district, _clock| async move { jiesu_web::start(&district).await })
}
