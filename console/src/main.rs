//! `jiesu-console [--config PATH]` serves the desk; `jiesu-console account add …` creates an
//! account from the command line (the first administrator of a new district, or a batch of
//! accounts from a script), the password read from `JIESU_CONSOLE_PASSWORD` or standard input.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("account") {
        return jiesu_console::cli::account(&args[1..]);
    }
    jiesu_kit::cli::main(jiesu_console::NAME, |district, _clock| async move { jiesu_console::start(&district).await })
}
