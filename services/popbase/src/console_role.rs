//! The `console` role: the operator console and the resident page over
//! HTTPS (see `popbase_console`). Served alone (`--role console`, calling
//! the gateway at `console.gateway`) or beside this process's own gateway
//! when `console.tls_cert` is set (the demo).

use std::net::SocketAddr;

use anyhow::Context;
use popbase_common::{Config, Shutdown};
use popbase_console::{Console, ConsoleSettings, GatewayLink};
use tokio::net::TcpListener;

/// The gateway the console calls: `console.gateway`, or this process's own
/// gateway (`own`, already dialable) in the scheme its TLS says.
fn gateway_address(config: &Config, own: Option<SocketAddr>) -> anyhow::Result<String> {
    if !config.console.gateway.is_empty() {
        return Ok(config.console.gateway.clone());
    }
    let Some(own) = own else {
        anyhow::bail!("the console role needs console.gateway (POPBASE_CONSOLE_GATEWAY): the gateway's department address");
    };
    if config.gateway.tls_cert.as_os_str().is_empty() {
        Ok(format!("http://{own}"))
    } else {
        Ok(format!("https://localhost:{}", own.port()))
    }
}

/// Binds the console's port and returns its address and the serving task.
pub async fn start(
    config: &Config,
    own_gateway: Option<SocketAddr>,
    shutdown: Shutdown,
) -> anyhow::Result<(SocketAddr, impl Future<Output = anyhow::Result<()>> + use<>)> {
    let client_ca = (!config.console.client_ca.as_os_str().is_empty()).then_some(config.console.client_ca.as_path());
    let tls = popbase_console::https::server_config(&config.console.tls_cert, &config.console.tls_key, client_ca)?;
    let address = gateway_address(config, own_gateway)?;
    let ca = (!config.console.gateway_ca.as_os_str().is_empty()).then_some(config.console.gateway_ca.as_path());
    if address.starts_with("https://") && ca.is_none() {
        anyhow::bail!("the gateway speaks TLS: give the console its CA (console.gateway_ca, POPBASE_CONSOLE_GATEWAY_CA)");
    }
    let gateway = GatewayLink::connect_lazy(&address, ca)?;
    // The gateway's own key: operators' tokens and residents' assertions
    // verify with it. Never a fresh one (nothing would verify).
    let key_path = config.token_key_path();
    if !key_path.is_file() {
        anyhow::bail!(
            "no token key at {}: the console verifies tokens with the gateway's key (gateway.token_key_file)",
            key_path.display()
        );
    }
    let token_key = popbase_gateway::role::read_or_create_key(&key_path)?;
    let console = Console::new(ConsoleSettings {
        gateway,
        token_key,
        max_token_hours: config.gateway.max_token_hours,
    });
    let addr = config.listen.console;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding console on {addr}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "serving the console (HTTPS)");
    let serving = async move {
        popbase_console::https::serve(console.router(), listener, tls, shutdown)
            .await
            .context("console server")
    };
    Ok((bound, serving))
}
