//! `kiln-echo [ADDR]`: the echo upstream used by the examples and tests. Prints
//! `listening on ADDR` once bound (ADDR defaults to 127.0.0.1:0, i.e. a free port).

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let (local, _stats) = match kiln_tests::echo::spawn(&addr).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("kiln-echo: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {local}");
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
