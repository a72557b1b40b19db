fn main() -> std::process::ExitCode {
    jiesu_kit::cli::main(jiesu_sla_timer::SERVICE, |district, clock| async move { jiesu_sla_timer::start(&district, clock).await })
}
