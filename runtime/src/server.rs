//! (to be written)

/// Starts the gateway: reads the env contract, builds `G`, serves until SIGTERM.
pub fn serve<G: crate::Gateway>() -> std::process::ExitCode {
    unimplemented!("server")
}
