//! The worker process: wires stores, producer, herder and REST API
//! together, and shuts them down in order on SIGTERM or Ctrl-C.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::producer::Producer;

use crate::group::{GroupPlacement, Lease, Membership};
use crate::herder::{Everything, Herder, Placement, RunnerDeps};
use crate::kafka::{build_producer, security, KafkaSettings, TopicCreator, TopicLayout};
use crate::metrics::Metrics;
use crate::plugins::PluginRegistry;
use crate::registry::cluster::{GroupWriter, KafkaSchemaLog};
use crate::rest::forward::Forwarder;
use crate::rest::{self, AppState};
use crate::store::kafka::{KafkaLog, KafkaStatusStore};
use crate::store::{
    prepare_state_dir, ConfigStore, MemoryStatusStore, OffsetStore, StateDirConfigStore,
    StateDirOffsetStore, StatusStore,
};
use crate::worker_config::WorkerConfig;

/// How long a stopping task waits for outstanding acknowledgements.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Most unacknowledged records per task.
const MAX_IN_FLIGHT: usize = 20_000;

/// How long startup waits for the broker before giving up.
const BROKER_WAIT: Duration = Duration::from_secs(30);

/// The worker's three stores, whichever backs them.
struct Stores {
    configs: Arc<dyn ConfigStore>,
    offsets: Arc<dyn OffsetStore>,
    status: Arc<dyn StatusStore>,
    /// For a worker in a group: the partitions of the offset topic, its
    /// units of work.
    units: Option<i32>,
    /// For a worker in a group: the status topic, where the registry's
    /// writer is announced.
    status_topic: Option<Arc<KafkaStatusStore>>,
}

/// Stores in Kafka topics for a worker in a group, in the state
/// directory for a standalone one.
async fn open_stores(
    config: &WorkerConfig,
    settings: &KafkaSettings,
    topics: &TopicCreator,
) -> anyhow::Result<Stores> {
    let Some(group) = &config.group else {
        return Ok(Stores {
            configs: Arc::new(StateDirConfigStore::new(&config.state_dir)),
            offsets: Arc::new(StateDirOffsetStore::new(&config.state_dir)),
            status: Arc::new(MemoryStatusStore::default()),
            units: None,
            status_topic: None,
        });
    };
    let stores = crate::store::kafka::open(settings, topics, group)
        .await
        .with_context(|| format!("opening the state topics of group {}", group.group_id))?;
    tracing::info!(
        group = %group.group_id,
        configs = %group.configs.name,
        offsets = %group.offsets.name,
        status = %group.status.name,
        "connector configs, offsets and statuses are kept in Kafka"
    );
    Ok(Stores {
        units: Some(stores.offsets.partitions()),
        configs: stores.configs,
        offsets: stores.offsets,
        status_topic: Some(Arc::clone(&stores.status)),
        status: stores.status,
    })
}

/// The embedded registry's router: on the registry topic, shared by the
/// group, for a worker in a group; in the state directory otherwise. The
/// writer role, for a group, is announced after each assignment.
async fn embedded_registry(
    config: &WorkerConfig,
    listen: std::net::SocketAddr,
    settings: &KafkaSettings,
    topics: &TopicCreator,
    shared: Option<(Arc<KafkaStatusStore>, Arc<dyn Placement>)>,
    forwarder: &Forwarder,
) -> anyhow::Result<(axum::Router, Option<Arc<GroupWriter>>)> {
    let (Some(group), Some((status, placement))) = (&config.group, shared) else {
        let registry = crate::registry::open_in_dir(&config.state_dir)?;
        return Ok((crate::registry::router(registry), None));
    };
    let topic = &group.registry;
    topics
        .ensure_compacted(&topic.name, topic.layout)
        .await
        .with_context(|| format!("creating the registry topic {}", topic.name))?;
    let (settings, name) = (settings.clone(), topic.name.clone());
    let registry = tokio::task::spawn_blocking(move || {
        let log = KafkaLog::open(&settings, &name)?;
        crate::registry::Registry::open(Box::new(KafkaSchemaLog::new(log))).map_err(|e| {
            crate::store::StoreError::Io {
                action: "replaying",
                path: name,
                source: e,
            }
        })
    })
    .await
    .context("opening the registry topic")?
    .with_context(|| format!("reading the registry topic {}", topic.name))?;
    let host = config
        .rest_advertised
        .rsplit_once(':')
        .map_or(config.rest_advertised.as_str(), |(host, _)| host);
    let url = forwarder.base(&format!("{host}:{}", listen.port()));
    let role = Arc::new(GroupWriter::new(placement, status, url));
    tracing::info!(topic = %topic.name, "the embedded schema registry is shared by the group");
    let router = crate::registry::shared_router(
        Arc::new(registry),
        Arc::clone(&role) as _,
        forwarder.clone(),
    );
    Ok((router, Some(role)))
}

/// Joins the worker's group: the membership that assigns this worker its
/// share of connectors, and its upkeep: configs other workers wrote,
/// its share published, partitions left without a live owner.
#[allow(clippy::too_many_arguments)]
fn join_group(
    settings: &KafkaSettings,
    group: &crate::store::kafka::GroupSettings,
    worker_id: &str,
    placement: Arc<GroupPlacement>,
    lease: Arc<Lease>,
    herder: &Arc<Herder>,
    status: Arc<crate::store::kafka::KafkaStatusStore>,
    registry_writer: Option<Arc<GroupWriter>>,
) -> anyhow::Result<(Membership, tokio::task::JoinHandle<()>)> {
    let placement_for_upkeep = Arc::clone(&placement);
    let runtime = tokio::runtime::Handle::current();
    let on_change: crate::group::OnChange = {
        let herder = Arc::clone(herder);
        let lease = Arc::clone(&lease);
        Arc::new(move || {
            // No purge of the producer's queue here: an idempotent producer
            // that drops queued records bumps its epoch, which Tansu 0.6
            // answers with ProducerFenced for good (seen after a stall).
            runtime.block_on(herder.reassign(!lease.holds()));
            if let Some(writer) = &registry_writer {
                writer.announce();
            }
        })
    };
    let membership = Membership::join(
        settings,
        &group.group_id,
        crate::group::GroupTopics {
            units: &group.offsets.name,
            anchor: &group.configs.name,
        },
        worker_id,
        placement,
        lease,
        on_change,
    )
    .with_context(|| format!("joining the group {}", group.group_id))?;
    let upkeep = tokio::spawn(crate::group::upkeep::run(
        Arc::clone(herder),
        status,
        placement_for_upkeep,
        worker_id.to_owned(),
        membership.rejoin_request(),
    ));
    tracing::info!(group = %group.group_id, "joined the group of workers");
    Ok((membership, upkeep))
}

/// Runs a worker until SIGTERM or Ctrl-C.
pub async fn run(config: WorkerConfig) -> anyhow::Result<()> {
    prepare_state_dir(&config.state_dir).with_context(|| {
        format!(
            "preparing the state directory {}",
            config.state_dir.display()
        )
    })?;
    let _lock = crate::store::lock_state_dir(&config.state_dir)?;
    // Security settings reach every client, wherever they were given;
    // Connect's Java names are translated to librdkafka's.
    let (security, tuning): (BTreeMap<_, _>, BTreeMap<_, _>) = config
        .producer_properties
        .clone()
        .into_iter()
        .partition(|(k, _)| security::is_security_key(k));
    let mut client = config.kafka_properties.clone();
    client.extend(security);
    let settings = KafkaSettings {
        bootstrap_servers: config.bootstrap_servers.clone(),
        client_properties: security::translate(&client, Some(&config.bootstrap_servers))
            .context("the Kafka security settings (--kafka-property, [kafka])")?,
        producer_overrides: security::translate(&tuning, Some(&config.bootstrap_servers))
            .context("the producer settings (--producer-property, [producer])")?,
        consumer_overrides: BTreeMap::new(),
        compression: config.compression.clone(),
    };
    let producer = build_producer(&settings).context("creating the Kafka producer")?;
    let cluster_id = wait_for_broker(&settings).await?;
    let topics = TopicCreator::new(&settings).context("creating the Kafka admin client")?;
    let stores = open_stores(&config, &settings, &topics).await?;
    let exactly_once = match (&config.group, stores.units) {
        (Some(group), Some(partitions)) if config.exactly_once_source => {
            tracing::info!(group = %group.group_id, "source tasks deliver exactly once: records and offsets in one transaction per batch");
            Some(crate::herder::transactional_sink::ExactlyOnce {
                group_id: group.group_id.clone(),
                offsets_topic: group.offsets.name.clone(),
                offsets_partitions: partitions,
            })
        }
        _ => None,
    };
    let lease = Arc::new(Lease::new(crate::group::LEASE));
    let group_placement = stores.units.map(|units| {
        Arc::new(GroupPlacement::new(
            units,
            crate::group::TAKEOVER_DELAY,
            Arc::clone(&lease),
        ))
    });
    let placement: Arc<dyn Placement> = match &group_placement {
        Some(p) => Arc::clone(p) as Arc<dyn Placement>,
        None => Arc::new(Everything),
    };
    let metrics = Arc::new(Metrics::default());
    let providers = crate::secrets::Providers::new(
        &config.config_provider_file_allowed_paths,
        config.config_provider_env_allowlist.as_deref(),
    )
    .map_err(anyhow::Error::msg)
    .context("--config-provider-file-allowed-paths / --config-provider-env-allowlist")?;
    let registry_credentials = rest::auth::Credentials::load(
        config.registry_basic_auth_file.as_deref(),
        config.registry_bearer_tokens_file.as_deref(),
    )
    .context("--registry-basic-auth-file / --registry-bearer-tokens-file")?
    .map(|c| Arc::new(c.for_registry()));
    // Workers of a group reach each other as their own API is served.
    let forwarder = Forwarder::new(config.rest_tls.is_some(), config.rest_forward_ca.as_deref())?;
    let (registry_router, registry_writer) = match config.registry_listen {
        Some(listen) => {
            let shared = stores
                .status_topic
                .clone()
                .zip(group_placement.clone().map(|p| p as Arc<dyn Placement>));
            let (router, writer) =
                embedded_registry(&config, listen, &settings, &topics, shared, &forwarder).await?;
            let router = crate::registry::guarded(router, registry_credentials.clone());
            (Some(router), writer)
        }
        None => (None, None),
    };
    let converter_defaults = with_registry_login(&config, registry_credentials.as_deref());
    let deps = Arc::new(RunnerDeps {
        placement,
        providers,
        override_policy: config.override_policy,
        producer: producer.clone(),
        kafka: settings.clone(),
        topics,
        offsets: stores.offsets,
        status: stores.status,
        metrics: Arc::clone(&metrics),
        worker_id: config.rest_advertised.clone(),
        offset_flush_interval: config.offset_flush_interval,
        max_in_flight: MAX_IN_FLIGHT,
        shutdown_timeout: SHUTDOWN_TIMEOUT,
        converter_defaults,
        topic_layout: TopicLayout::data(config.topic_partitions, config.topic_replication_factor),
        active_topics: Default::default(),
        exactly_once,
    });
    let herder = Arc::new(Herder::new(PluginRegistry::builtin(), stores.configs, deps));
    let listener = tokio::net::TcpListener::bind(config.rest_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for the REST API; free the port or choose another with --rest-listen",
                config.rest_listen
            )
        })?;
    // One certificate serves both HTTPS listeners.
    let rest_tls = match &config.rest_tls {
        Some((cert, key)) => Some(rest::server::tls_acceptor(cert, key)?),
        None => None,
    };
    let registry_tls = rest_tls.clone();
    let registry_server = match (config.registry_listen, registry_router) {
        (Some(listen), Some(router)) => {
            let listener = crate::registry::bind(listen).await?;
            tracing::info!(listen = %listen, "embedded schema registry started");
            Some(tokio::spawn(async move {
                rest::server::serve(listener, router, registry_tls, std::future::pending()).await
            }))
        }
        _ => None,
    };
    let restored = herder.restore().await.context(match &config.group {
        Some(group) => format!("restoring connectors from the topic {}", group.configs.name),
        None => "restoring connectors from the state directory".to_owned(),
    })?;
    let membership = match (&config.group, group_placement, stores.status_topic) {
        (Some(group), Some(placement), Some(status)) => Some((
            join_group(
                &settings,
                group,
                &config.rest_advertised,
                placement,
                lease,
                &herder,
                Arc::clone(&status),
                registry_writer,
            )?,
            status,
        )),
        _ => None,
    };
    tracing::info!(
        rest = %config.rest_listen,
        state_dir = %config.state_dir.display(),
        bootstrap_servers = %config.bootstrap_servers,
        restored,
        "worker started"
    );
    let credentials = rest::auth::Credentials::load(
        config.rest_basic_auth_file.as_deref(),
        config.rest_bearer_tokens_file.as_deref(),
    )
    .context("--rest-basic-auth-file / --rest-bearer-tokens-file")?
    .map(Arc::new);
    let mut warnings = Vec::new();
    if credentials.is_none() && !config.rest_listen.ip().is_loopback() {
        let warning = format!(
            "the REST API listens on {} beyond this machine WITHOUT authentication: anyone who reaches it can create connectors and read their data; set --rest-basic-auth-file or --rest-bearer-tokens-file, or listen on 127.0.0.1",
            config.rest_listen
        );
        tracing::warn!("{warning}");
        warnings.push(warning);
    }
    let app = rest::router(
        Arc::new(AppState {
            herder: Arc::clone(&herder),
            metrics,
            kafka_cluster_id: cluster_id,
            warnings,
            forwarder,
        }),
        credentials,
    );
    rest::server::serve(listener, app, rest_tls, shutdown_signal())
        .await
        .context("serving the REST API")?;
    tracing::info!("shutting down: stopping tasks, committing offsets");
    herder.shutdown().await;
    if let Some(((membership, upkeep), status)) = membership {
        // Only now that the tasks stopped may the group hand them on.
        upkeep.abort();
        crate::group::upkeep::withdraw(&status, &config.rest_advertised);
        let _ = tokio::task::spawn_blocking(move || membership.leave()).await;
    }
    let flushed = tokio::task::spawn_blocking(move || producer.flush(SHUTDOWN_TIMEOUT)).await;
    if !matches!(flushed, Ok(Ok(()))) {
        tracing::warn!(
            "producer flush did not finish; unacknowledged records are re-sent on restart"
        );
    }
    if let Some(server) = registry_server {
        // The registry stays up until the tasks that use it have stopped.
        server.abort();
    }
    tracing::info!("worker stopped");
    Ok(())
}

/// The converters' defaults, with the embedded registry's login added when
/// that registry requires one and the converters use it (no
/// --schema-registry-url elsewhere, no login of their own).
fn with_registry_login(
    config: &WorkerConfig,
    credentials: Option<&rest::auth::Credentials>,
) -> BTreeMap<String, String> {
    let mut defaults = config.converter_defaults.clone();
    let (Some(listen), Some(login)) = (config.registry_listen, credentials.and_then(|c| c.login()))
    else {
        return defaults;
    };
    let embedded = crate::worker_config::local_url(listen);
    for side in ["key", "value"] {
        let prefix = format!("{side}.converter.");
        if defaults.get(&format!("{prefix}schema.registry.url")) != Some(&embedded)
            || defaults.contains_key(&format!("{prefix}basic.auth.user.info"))
            || defaults.contains_key(&format!("{prefix}bearer.auth.token"))
        {
            continue;
        }
        let pairs = match &login {
            rest::auth::Login::Basic(user_info) => [
                ("basic.auth.credentials.source", "USER_INFO"),
                ("basic.auth.user.info", user_info.as_str()),
            ],
            rest::auth::Login::Bearer(token) => [
                ("bearer.auth.credentials.source", "STATIC_TOKEN"),
                ("bearer.auth.token", token.as_str()),
            ],
        };
        for (key, value) in pairs {
            defaults.insert(format!("{prefix}{key}"), value.to_owned());
        }
    }
    defaults
}

/// The broker's cluster id, waiting up to [`BROKER_WAIT`] for it to answer
/// (a refused login or certificate ends the wait at once).
async fn wait_for_broker(settings: &KafkaSettings) -> anyhow::Result<String> {
    let settings = settings.clone();
    let found =
        tokio::task::spawn_blocking(move || crate::kafka::cluster_id(&settings, BROKER_WAIT))
            .await
            .context("waiting for the broker")?;
    Ok(found?)
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
}
