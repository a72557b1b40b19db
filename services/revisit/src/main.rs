fn main() -> std::process::ExitCode {
    jiesu_kit::cli::main(jiesu_revisit::SERVICE, |district, clock| async move { jiesu_revisit::start(&district, clock).await })
}
