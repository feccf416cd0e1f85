//! `popbase demo`: a small city on first start, then every role in one process.

use popbase_common::{Config, Role};

/// Seed of the demo city, so every demo shows the same people.
const DEMO_SEED: u64 = 2021;

pub async fn run(config: Config, persons: u64) -> anyhow::Result<()> {
    let household_dir = config.store_dir(Role::Household);
    if !household_dir.join("CURRENT").exists() {
        eprintln!(
            "popbase demo: generating a {persons}-person city (Zibo, seed {DEMO_SEED}) in {}",
            config.data_dir.display()
        );
        let generation_config = config.clone();
        tokio::task::spawn_blocking(move || crate::generate::run(&generation_config, "3703", persons, DEMO_SEED)).await??;
    } else {
        eprintln!("popbase demo: using the city already in {}", config.data_dir.display());
    }
    let gateway = config.listen.gateway;
    let household = config.listen.household;
    let metrics = config.listen.metrics;
    let data = config.data_dir.display();
    eprintln!(
        "\npopbase demo: serving every role. The gateway runs in token mode without TLS\n\
         (demo only; production uses mTLS, see docs/operations.md). Try:\n\
         \x20 popbase token --data {data} --department education      # a signed department token\n\
         \x20 examples/python/run.sh --gateway {gateway} --household {household} --data {data}\n\
         \x20 grpcurl -plaintext {gateway} list\n\
         \x20 grpcurl -plaintext {household} popbase.ops.v1.Ops/GetStoreStats\n\
         \x20 popbase stats --target http://{household}\n\
         \x20 curl http://{metrics}/metrics\n\
         Stop with Ctrl-C.\n"
    );
    crate::serve::run(config, Role::All).await
}
