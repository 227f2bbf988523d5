//! The wiring: sockets, the one clock, the engine loop, the store, shutdown and systemd.
//!
//! This is the only module that reads the clock (`Instant::now`, `SystemTime::now`).
//! [`run`] takes the configuration and a shutdown future, so tests and `main` drive it
//! the same way (the mini-redis pattern).

pub mod calllog;
pub mod calls;
pub mod conferences;
pub mod logging;
pub mod queues;
pub mod systemd;

use crate::config::Config;
use crate::engine::peer::{Peer, Proto};
use crate::engine::{Engine, EngineConfig, Input, ListenerInfo, Output};
use crate::registrar::{Binding, BindingChange, Credentials, RegistrarConfig};
use crate::sip::transaction::TimerConfig;
use crate::store::{Store, StoreHandle};
use crate::transport::{
    ListenSpec, ListenerId, Outbound, TransportEvent, TransportHandle, TransportKind,
    TransportLimits, Transports,
};
use crate::util::time::Now;
use anyhow::Context;
use rand::RngCore;
use std::future::Future;
use std::io::Write;
use std::time::{Instant, SystemTime};
use tokio::sync::mpsc;

/// User call log entries older than this are deleted (30 days, the service terms).
const CALL_LOG_RETENTION_S: u64 = 30 * 24 * 3600;
/// How often the queue configuration's revision is checked and the live snapshot written.
const QUEUE_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a draining daemon keeps answering retransmissions once nothing is pending.
const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The wall clock in Unix milliseconds.
fn now_ms() -> i64 {
    i64::try_from(Engine::now_ms(now())).unwrap_or(i64::MAX)
}

/// The current time: the only place the clock is read.
#[allow(clippy::disallowed_methods)]
pub fn now() -> Now {
    Now::new(Instant::now(), SystemTime::now())
}

/// Answers from side-effect tasks back to the engine loop.
enum Feedback {
    Credentials {
        lookup: u64,
        credentials: Option<Credentials>,
    },
    User {
        lookup: u64,
        user: Option<crate::engine::ResolvedUser>,
    },
    Number {
        lookup: u64,
        owner: Option<crate::engine::NumberOwner>,
    },
    Caller {
        lookup: u64,
        name: Option<String>,
    },
    CallerNumbers {
        lookup: u64,
        numbers: crate::engine::CallerNumbers,
    },
    Mobile {
        lookup: u64,
        user: Option<(i64, i64)>,
    },
    /// The queue configuration changed in the store and was read again.
    Queues(Box<queues::LoadedQueues>),
    /// The conference rooms changed in the store and were read again (revision, rooms).
    Rooms(i64, Vec<crate::engine::conference::RoomConfig>),
    /// The answer to a PIN check.
    RoomPin {
        lookup: u64,
        role: Option<crate::engine::conference::PinRole>,
    },
    /// Controls the CLI left for running conferences.
    ConferenceCommands(Vec<crate::store::ConferenceCommand>),
    /// Commands the CLI left about users' calls in progress (merge).
    CallCommands(Vec<crate::store::CallCommand>),
}

/// Runs the daemon until `shutdown` completes, then drains and stops.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let db_path = config.daemon.store.db_path();
    let store = tokio::task::spawn_blocking(move || Store::open(&db_path))
        .await
        .context("store thread")?
        .context("opening the database")?;
    let db = store.handle();

    // Bind every socket first: READY is only sent once they are all bound.
    let mut specs = Vec::new();
    let mut listeners = Vec::new();
    for profile in &config.profiles {
        for listen in &profile.listen {
            for kind in &listen.transports {
                let id = u32::try_from(specs.len()).context("too many listeners")?;
                let kind = match kind {
                    crate::config::TransportKind::Udp => TransportKind::Udp,
                    crate::config::TransportKind::Tcp => TransportKind::Tcp,
                };
                specs.push(ListenSpec {
                    addr: listen.addr,
                    kind,
                    listener: ListenerId(id),
                });
                listeners.push(ListenerInfo {
                    proto: if kind == TransportKind::Tcp {
                        Proto::Tcp
                    } else {
                        Proto::Udp
                    },
                    profile: profile.name.clone(),
                    addr: listen.addr,
                    realm: profile.phones().map(|p| p.realm.clone()),
                    digest_algorithms: profile
                        .phones()
                        .map(|p| p.digest_algorithms.clone())
                        .unwrap_or_default(),
                    trusted: profile.trunk().map(|t| t.trusted.clone()),
                    numbering: profile.trunk().map(|t| t.numbering.clone()),
                    options_ping: profile.trunk().and_then(|t| t.options_ping),
                    anchor_media: profile.anchor_media,
                    outbound: profile
                        .trunk()
                        .and_then(|t| t.outbound_proxy.as_ref())
                        .and_then(|hp| {
                            hp.host
                                .parse::<std::net::IpAddr>()
                                .ok()
                                .map(|ip| (ip, hp.port.unwrap_or(5060)))
                        })
                        .map(|(ip, port)| std::net::SocketAddr::new(ip, port)),
                });
            }
        }
    }
    let limits = transport_limits(&config);
    let (events_tx, mut events_rx) = mpsc::channel::<TransportEvent>(8192);
    let transports =
        Transports::bind(&specs, limits, events_tx).context("binding listening sockets")?;
    let mut stdout = std::io::stdout().lock();
    for bound in transports.local_addrs() {
        let idx = bound.listener.0 as usize;
        if let Some(l) = listeners.get_mut(idx) {
            l.addr = bound.local;
            let _ = writeln!(
                stdout,
                "listening profile={} transport={} addr={}",
                l.profile, bound.kind, bound.local
            );
            tracing::info!(profile = %l.profile, transport = %bound.kind, addr = %bound.local, "listening");
        }
    }
    drop(stdout);

    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let mut candidate = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut candidate);
    let nonce_secret = db
        .load_or_create_secret("digest-nonce", candidate)
        .await
        .context("loading the nonce secret")?;
    let d = &config.daemon;
    // Caller-ID enrichment: users, the tenant directory, then the external service.
    let lookup_settings =
        crate::lookup::LookupSettingsResolved::from_config(&config).context("lookup settings")?;
    let caller_lookup_budget = lookup_settings.budget() + std::time::Duration::from_millis(50);
    let callers = crate::lookup::LookupService::new(lookup_settings, db.clone())
        .context("caller lookup service")?;
    // The media plane: its own thread and sockets, started when any profile anchors.
    let (media_tx, mut media_rx) = mpsc::channel::<crate::media::control::MediaEvent>(4096);
    let media = if config.profiles.iter().any(|p| p.anchor_media) {
        Some(start_media(&config.daemon.media, media_tx)?)
    } else {
        drop(media_tx);
        None
    };
    let mut engine = Engine::new(EngineConfig {
        caller_lookup_budget,
        listeners,
        timers: TimerConfig::from_base(d.sip.t1(), d.sip.t2(), d.sip.t4()),
        registrar: RegistrarConfig {
            min_expires: d.registrar.min_expires,
            max_expires: d.registrar.max_expires,
            default_expires: d.registrar.default_expires,
            max_contacts: d.registrar.max_contacts_per_aor as usize,
            nonce_lifetime_s: d.registrar.nonce_lifetime_s,
        },
        server_header: d.sip.user_agent.clone(),
        retry_after_s: d.shutdown.retry_after_s,
        seed,
        nonce_secret,
        media: media.as_ref().map(|_| crate::engine::media::MediaConfig {
            address: d.media.address,
            moh_on_hold: d.media.moh_on_hold,
        }),
    });

    // Registrations survive a restart: load what was persisted.
    let now0 = now();
    let persisted = db
        .load_bindings(now0.unix_secs() as i64)
        .await
        .context("loading registrations")?;
    let restored = persisted.len();
    engine.handle_input(Input::RestoreBindings {
        now: now0,
        bindings: persisted.into_iter().map(from_store).collect(),
    });
    tracing::info!(bindings = restored, "registrations restored");

    // Queues: the configuration now, and today's counts for the wallboard.
    let loaded = queues::load(&db).await.context("loading the queues")?;
    for (queue, answered, unanswered) in queues::today_counts(&db, &loaded.config, now0.wall).await
    {
        engine.seed_queue_today(queue, answered, unanswered);
    }
    tracing::info!(queues = loaded.config.queues.len(), "queues loaded");
    let mut queue_revision = loaded.revision;
    let mut queue_tenants = loaded.tenants;
    engine.handle_input(Input::QueueConfig {
        now: now0,
        config: Box::new(loaded.config),
    });
    // Conference rooms, likewise.
    let (mut room_revision, rooms) = conferences::load(&db)
        .await
        .context("loading the conference rooms")?;
    tracing::info!(rooms = rooms.len(), "conference rooms loaded");
    engine.handle_input(Input::RoomConfig { now: now0, rooms });
    let mut queue_tick = tokio::time::interval(QUEUE_POLL);
    queue_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reloading = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut transport_stop = stop_rx.clone();
    let running = transports
        .spawn(async move {
            let _ = transport_stop.wait_for(|s| *s).await;
        })
        .context("starting transports")?;
    let net = running.handle();

    // Retention: user call log entries older than 30 days are deleted, hourly; expired
    // caller-lookup cache entries go with them.
    let retention_db = db.clone();
    let mut retention_stop = stop_rx.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = retention_stop.wait_for(|s| *s) => break,
            }
            let now = now();
            let cutoff_ms = (now.unix_secs().saturating_sub(CALL_LOG_RETENTION_S) * 1000) as i64;
            match retention_db.delete_calls_before(cutoff_ms).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "call log retention"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "call log retention failed"),
            }
            let _ = retention_db.cache_purge(now.unix_secs() as i64).await;
            // Queue history: per tenant, its own retention.
            match retention_db
                .delete_queue_history_expired((now.unix_secs() * 1000) as i64)
                .await
            {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "queue history retention"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "queue history retention failed"),
            }
        }
    });

    println!("ready");
    systemd::notify_ready();
    tracing::info!("ready");

    let drain_timeout = d.shutdown.drain_timeout();
    let (fb_tx, mut fb_rx) = mpsc::channel::<Feedback>(4096);
    let watchdog = systemd::watchdog_interval();
    let mut next_watchdog = watchdog.map(|w| now().mono + w);
    let mut shutdown = Box::pin(shutdown);
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    let mut drain_started: Option<Instant> = None;

    loop {
        let deadline = engine.poll_timeout();
        let grace_end = drain_started
            .map(|s| s + DRAIN_GRACE)
            .filter(|g| *g > now().mono);
        let sleep_until = [deadline, next_watchdog, grace_end]
            .into_iter()
            .flatten()
            .min();
        let sleep = async {
            match sleep_until {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let drain_sleep = async {
            match drain_deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = events_rx.recv() => {
                let Some(ev) = ev else { break };
                handle_transport_event(&mut engine, ev);
                // Take whatever else is queued without sleeping in between (batching).
                for _ in 0..256 {
                    match events_rx.try_recv() {
                        Ok(ev) => {
                            handle_transport_event(&mut engine, ev);
                            drain_outputs(&mut engine, &net, &db, &callers, &fb_tx, media.as_ref());
                        }
                        Err(_) => break,
                    }
                }
            }
            Some(event) = media_rx.recv() => {
                engine.handle_input(Input::Media { now: now(), event });
            }
            fb = fb_rx.recv() => {
                match fb {
                    Some(Feedback::Credentials { lookup, credentials }) => {
                        engine.handle_input(Input::CredentialsFound { now: now(), lookup, credentials });
                    }
                    Some(Feedback::Mobile { lookup, user }) => {
                        engine.handle_input(Input::MobileResolved { now: now(), lookup, user });
                    }
                    Some(Feedback::CallerNumbers { lookup, numbers }) => {
                        engine.handle_input(Input::CallerNumbersResolved { now: now(), lookup, numbers });
                    }
                    Some(Feedback::Caller { lookup, name }) => {
                        engine.handle_input(Input::CallerFound { now: now(), lookup, name });
                    }
                    Some(Feedback::Number { lookup, owner }) => {
                        engine.handle_input(Input::NumberResolved { now: now(), lookup, owner });
                    }
                    Some(Feedback::User { lookup, user }) => {
                        engine.handle_input(Input::UserResolved { now: now(), lookup, user });
                    }
                    Some(Feedback::Rooms(revision, rooms)) => {
                        tracing::info!(revision, rooms = rooms.len(), "conference rooms changed");
                        room_revision = revision;
                        engine.handle_input(Input::RoomConfig { now: now(), rooms });
                    }
                    Some(Feedback::RoomPin { lookup, role }) => {
                        engine.handle_input(Input::RoomPinChecked { now: now(), lookup, role });
                    }
                    Some(Feedback::ConferenceCommands(commands)) => {
                        for c in commands {
                            engine.handle_input(Input::ConferenceControl {
                                now: now(),
                                command: c.id.0,
                                room: c.room.0,
                                control: conferences::control(c.control),
                            });
                        }
                    }
                    Some(Feedback::CallCommands(commands)) => {
                        for c in &commands {
                            engine.handle_input(calls::input(now(), c));
                        }
                    }
                    Some(Feedback::Queues(loaded)) => {
                        tracing::info!(revision = loaded.revision, queues = loaded.config.queues.len(), "queue configuration changed");
                        queue_revision = loaded.revision;
                        queue_tenants = loaded.tenants;
                        engine.handle_input(Input::QueueConfig { now: now(), config: Box::new(loaded.config) });
                    }
                    None => {}
                }
            }
            _ = queue_tick.tick() => {
                // The live snapshot for `queue status`, and a reload when the store's
                // queue configuration moved (the CLI changed it).
                let rows = queues::live_rows(engine.queue_snapshots(now()), &queue_tenants, now_ms());
                let write = db.write_queue_live(rows);
                let revision = db.queue_config_revision();
                let live = db.write_conference_live(now_ms(), conferences::live(engine.live_rooms()));
                let room_rev = db.conference_config_revision();
                let commands = db.pending_conference_commands(now_ms());
                let call_commands = db.pending_call_commands(now_ms());
                let (db, fb, reloading) = (db.clone(), fb_tx.clone(), reloading.clone());
                let known = queue_revision;
                let known_rooms = room_revision;
                tokio::spawn(async move {
                    if let Err(e) = write.await {
                        tracing::debug!(error = %e, "queue live snapshot not written");
                    }
                    if let Err(e) = live.await {
                        tracing::debug!(error = %e, "conference live state not written");
                    }
                    match commands.await {
                        Ok(c) if !c.is_empty() => {
                            let _ = fb.send(Feedback::ConferenceCommands(c)).await;
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "conference commands not read"),
                    }
                    match call_commands.await {
                        Ok(c) if !c.is_empty() => {
                            let _ = fb.send(Feedback::CallCommands(c)).await;
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "call commands not read"),
                    }
                    if matches!(room_rev.await, Ok(r) if r != known_rooms) {
                        match conferences::load(&db).await {
                            Ok((revision, rooms)) => {
                                let _ = fb.send(Feedback::Rooms(revision, rooms)).await;
                            }
                            Err(e) => tracing::warn!(error = %e, "conference rooms reload failed"),
                        }
                    }
                    let changed = matches!(revision.await, Ok(r) if r != known);
                    if !changed || reloading.swap(true, std::sync::atomic::Ordering::AcqRel) {
                        return;
                    }
                    match queues::load(&db).await {
                        Ok(loaded) => {
                            let _ = fb.send(Feedback::Queues(Box::new(loaded))).await;
                        }
                        Err(e) => tracing::warn!(error = %e, "queue configuration reload failed"),
                    }
                    reloading.store(false, std::sync::atomic::Ordering::Release);
                });
            }
            _ = sleep => {
                engine.handle_input(Input::Timeout(now()));
                if let (Some(w), Some(at)) = (watchdog, next_watchdog) {
                    if now().mono >= at {
                        systemd::notify_watchdog();
                        next_watchdog = Some(now().mono + w);
                    }
                }
            }
            _ = &mut shutdown, if drain_deadline.is_none() => {
                tracing::info!(timeout_s = drain_timeout.as_secs(), "shutting down: draining");
                systemd::notify_stopping();
                engine.handle_input(Input::Drain);
                drain_deadline = Some(tokio::time::Instant::now() + drain_timeout);
                drain_started = Some(now().mono);
            }
            _ = drain_sleep => {
                // Calls still up when the drain time ends are hung up and logged.
                engine.handle_input(Input::HangUpAll(now()));
                drain_outputs(&mut engine, &net, &db, &callers, &fb_tx, media.as_ref());
                break;
            }
        }
        drain_outputs(&mut engine, &net, &db, &callers, &fb_tx, media.as_ref());
        // Drained when no request waits for an answer from us. Transactions that only
        // linger to absorb retransmissions (timers J, K, I) get a short grace, not the
        // whole drain timeout: their final responses are already sent.
        if let Some(started) = drain_started {
            let grace_over = now().mono >= started + DRAIN_GRACE;
            if engine.is_idle() && (engine.transactions() == 0 || grace_over) {
                break;
            }
        }
    }

    if let Some(media) = media {
        tracing::info!("stopping the media plane");
        tokio::task::spawn_blocking(move || media.shutdown())
            .await
            .context("media thread")?;
    }
    tracing::info!("stopping transports");
    let _ = stop_tx.send(true);
    running.stopped().await;
    drop(db);
    tokio::task::spawn_blocking(move || store.close())
        .await
        .context("store thread")?
        .context("closing the database")?;
    tracing::info!("stopped");
    Ok(())
}

/// Starts the media plane with the built-in sounds and the per-tenant overrides.
fn start_media(
    settings: &crate::config::MediaSettings,
    events: mpsc::Sender<crate::media::control::MediaEvent>,
) -> anyhow::Result<crate::media::driver::MediaHandle> {
    use crate::media::prompt::PromptLibrary;
    let mut library = PromptLibrary::builtin().context("loading the built-in sounds")?;
    if let Some(dir) = &settings.sounds_dir {
        let report = library
            .load_dir(dir)
            .with_context(|| format!("loading sounds from {}", dir.display()))?;
        tracing::info!(dir = %dir.display(), ?report, "tenant sounds loaded");
    }
    let prompts = crate::media::relay::prompts::LibraryPrompts::new(std::sync::Arc::new(library));
    let config = crate::media::driver::MediaDriverConfig {
        media_timeout: settings.timeout().unwrap_or(std::time::Duration::MAX),
        port_min: settings.port_min,
        port_max: settings.port_max,
        ..Default::default()
    };
    crate::media::driver::MediaDriver::start(config, Box::new(prompts), events)
        .context("starting the media plane")
}

fn transport_limits(config: &Config) -> TransportLimits {
    let t = &config.daemon.transport;
    let max = config.daemon.sip.max_message_size;
    TransportLimits {
        max_message_size: max,
        max_header_size: max.min(TransportLimits::default().max_header_size.max(max / 2)),
        max_connections: t.max_tcp_connections as usize,
        message_read_timeout: t.tcp_header_timeout(),
        idle_timeout: t.tcp_idle_timeout(),
        ..TransportLimits::default()
    }
}

fn peer_of(
    kind: TransportKind,
    source: std::net::SocketAddr,
    local: std::net::SocketAddr,
    conn: Option<crate::transport::ConnId>,
    listener: ListenerId,
) -> Peer {
    Peer {
        proto: if kind == TransportKind::Tcp {
            Proto::Tcp
        } else {
            Proto::Udp
        },
        remote: source,
        local,
        conn: conn.map(|c| c.0),
        listener: listener.0 as usize,
    }
}

fn handle_transport_event(engine: &mut Engine, ev: TransportEvent) {
    match ev {
        TransportEvent::Message(m) => {
            let peer = peer_of(m.kind, m.source, m.local, m.conn, m.listener);
            engine.handle_input(Input::Received {
                now: now(),
                data: m.data,
                peer,
            });
        }
        TransportEvent::Rejected { head, error } => {
            let peer = peer_of(head.kind, head.source, head.local, head.conn, head.listener);
            tracing::debug!(%error, "stream message rejected by the framer");
            engine.handle_input(Input::Rejected {
                now: now(),
                head: head.data,
                peer,
                code: error.sip_status(),
            });
        }
        TransportEvent::Closed { .. } | TransportEvent::ConnectFailed { .. } => {}
    }
}

fn drain_outputs(
    engine: &mut Engine,
    net: &TransportHandle,
    db: &StoreHandle,
    callers: &crate::lookup::LookupService,
    fb: &mpsc::Sender<Feedback>,
    media: Option<&crate::media::driver::MediaHandle>,
) {
    while let Some(out) = engine.poll_output() {
        match out {
            Output::Transmit { data, peer } => {
                let kind = match peer.proto {
                    Proto::Udp => TransportKind::Udp,
                    Proto::Tcp => TransportKind::Tcp,
                };
                let out = Outbound {
                    data,
                    dest: peer.remote,
                    kind,
                    conn: peer.conn.map(crate::transport::ConnId),
                    listener: ListenerId(peer.listener as u32),
                };
                if let Err(e) = net.send(out) {
                    tracing::warn!(error = %e, "send failed");
                }
            }
            Output::LookupCredentials {
                lookup,
                realm,
                username,
            } => {
                let reply = db.lookup_sip_user(&realm, &username);
                let fb = fb.clone();
                tokio::spawn(async move {
                    let credentials = match reply.await {
                        Ok(found) => found.map(|c| Credentials {
                            user_id: c.user_id.0,
                            username: c.username,
                            ha1_md5: c.ha1_md5,
                            ha1_sha256: c.ha1_sha256,
                            tenant_id: c.tenant_id.0,
                        }),
                        Err(e) => {
                            tracing::warn!(error = %e, "credentials lookup failed");
                            None
                        }
                    };
                    let _ = fb
                        .send(Feedback::Credentials {
                            lookup,
                            credentials,
                        })
                        .await;
                });
            }
            Output::Persist(change) => persist(db, change),
            Output::ResolveUser {
                lookup,
                tenant_id,
                extension,
            } => {
                let reply = db.find_user(crate::store::TenantId(tenant_id), &extension);
                let fb = fb.clone();
                let db = db.clone();
                tokio::spawn(async move {
                    let user = match reply.await {
                        Ok(Some(u)) => Some(resolve_user(&db, u).await),
                        Ok(None) => None,
                        Err(e) => {
                            tracing::warn!(error = %e, "user lookup failed");
                            None
                        }
                    };
                    let _ = fb.send(Feedback::User { lookup, user }).await;
                });
            }
            Output::CallEnded(finished) => log_call(db, *finished),
            Output::Media(command) => match media {
                Some(m) => {
                    if m.send(command).is_err() {
                        tracing::error!("the media plane has stopped; media commands are lost");
                    }
                }
                None => tracing::warn!("media command without a media plane"),
            },
            Output::ResolveMobile { lookup, number } => {
                let reply = db.lookup_user_by_mobile(&number);
                let fb = fb.clone();
                tokio::spawn(async move {
                    let user = reply.await.ok().flatten().map(|u| (u.tenant_id.0, u.id.0));
                    let _ = fb.send(Feedback::Mobile { lookup, user }).await;
                });
            }
            Output::ResolveCallerNumbers {
                lookup,
                // The user's tenant is the one whose numbers count.
                tenant_id: _,
                user_id,
            } => {
                // Both numbers come from the tenant's own numbers (an assigned personal
                // number or the user's mobile when the tenant owns it; the first main
                // number), so a user can never present a number the tenant does not have.
                let settings = db.user_settings(crate::store::UserId(user_id));
                let owned = db.presentable_numbers(crate::store::UserId(user_id));
                let fb = fb.clone();
                tokio::spawn(async move {
                    let present = settings.await.map(|s| s.present).unwrap_or_default();
                    let owned = owned.await.unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "presentable numbers lookup failed");
                        Default::default()
                    });
                    let (own, main) = (owned.own, owned.main);
                    use crate::store::Presentation;
                    let numbers = crate::engine::CallerNumbers {
                        own: if present == Presentation::Main {
                            None
                        } else {
                            own
                        },
                        main,
                        hide_by_default: present == Presentation::Hidden,
                    };
                    let _ = fb.send(Feedback::CallerNumbers { lookup, numbers }).await;
                });
            }
            Output::LookupCaller {
                lookup,
                tenant_id,
                number,
            } => {
                let callers = callers.clone();
                let fb = fb.clone();
                tokio::spawn(async move {
                    let info = callers
                        .lookup(
                            crate::store::TenantId(tenant_id),
                            &number,
                            now().unix_secs(),
                        )
                        .await;
                    let _ = fb
                        .send(Feedback::Caller {
                            lookup,
                            name: info.map(|i| i.name),
                        })
                        .await;
                });
            }
            Output::AgentPresence { user_id, presence } => {
                let reply = db.set_agent_presence(
                    crate::store::UserId(user_id),
                    queues::store_presence(&presence),
                    now_ms(),
                );
                tokio::spawn(async move {
                    if let Err(e) = reply.await {
                        tracing::warn!(user = user_id, error = %e, "agent presence not stored");
                    }
                });
            }
            Output::VerifyRoomPin {
                lookup,
                room,
                digits,
            } => {
                let reply = db.verify_room_pin(
                    crate::store::ConferenceRoomId(room),
                    crate::store::RoomPin::new(digits.0),
                );
                let fb = fb.clone();
                tokio::spawn(async move {
                    let role = match reply.await {
                        Ok(role) => role.map(conferences::role),
                        Err(e) => {
                            tracing::warn!(room, error = %e, "PIN check failed");
                            None
                        }
                    };
                    let _ = fb.send(Feedback::RoomPin { lookup, role }).await;
                });
            }
            Output::ConferenceControlDone { command, result } => {
                let reply = db.finish_conference_command(
                    crate::store::ConferenceCommandId(command),
                    conferences::result(result),
                    now_ms(),
                );
                tokio::spawn(async move {
                    if let Err(e) = reply.await {
                        tracing::warn!(command, error = %e, "conference command result not stored");
                    }
                });
            }
            Output::MergeDone { command, result } => {
                let reply = db.finish_call_command(
                    crate::store::CallCommandId(command),
                    calls::merge_result(result),
                    now_ms(),
                );
                tokio::spawn(async move {
                    if let Err(e) = reply.await {
                        tracing::warn!(command, error = %e, "merge result not stored");
                    }
                });
            }
            Output::ConferenceEnded(report) => {
                let reply = db.write_conference(conferences::record(&report));
                tokio::spawn(async move {
                    if let Err(e) = reply.await {
                        tracing::warn!(error = %e, "conference record not written");
                    }
                });
            }
            Output::ResolveNumber { lookup, number } => {
                let reply = db.route_number(&number);
                let fb = fb.clone();
                let db = db.clone();
                tokio::spawn(async move {
                    // A personal number routes to its user; main and queue numbers to
                    // the queue they lead to.
                    let owner = match reply.await {
                        Ok(Some((n, user))) => {
                            let user = match user {
                                Some(u) => Some(resolve_user(&db, u).await),
                                None => None,
                            };
                            Some(crate::engine::NumberOwner {
                                tenant_id: n.tenant_id.0,
                                user,
                                queue: n.queue_id.map(|q| crate::queue::model::QueueId(q.0)),
                                conference: n.conference_id.map(|c| c.0),
                            })
                        }
                        Ok(None) => None,
                        Err(e) => {
                            tracing::warn!(error = %e, "number lookup failed");
                            None
                        }
                    };
                    let _ = fb.send(Feedback::Number { lookup, owner }).await;
                });
            }
        }
    }
}

/// A user as the engine routes to it: with the user's forwarding rules, whose targets
/// (a number, or another user of the tenant by extension) are resolved here.
async fn resolve_user(db: &StoreHandle, u: crate::store::User) -> crate::engine::ResolvedUser {
    use crate::call::plan::{ForwardTarget, Forwarding};
    let settings = db.user_settings(u.id).await.unwrap_or_default();
    let mut targets = Vec::new();
    for t in [
        &settings.forward_always,
        &settings.forward_busy,
        &settings.forward_no_answer,
    ] {
        let target = match t {
            None => None,
            Some(n) if n.starts_with('+') => Some(ForwardTarget::Number(n.clone())),
            Some(ext) => db
                .find_user(u.tenant_id, ext)
                .await
                .ok()
                .flatten()
                .map(|f| ForwardTarget::User {
                    user_id: f.id.0,
                    aor: format!("sip:{}@{}", f.sip_username, f.realm),
                    mobile: f.mobile,
                }),
        };
        targets.push(target);
    }
    let mut it = targets.into_iter();
    let forwarding = Forwarding {
        always: it.next().flatten(),
        busy: it.next().flatten(),
        no_answer: it.next().flatten(),
        no_answer_after: std::time::Duration::from_secs(u64::from(settings.no_answer_s)),
    };
    crate::engine::ResolvedUser {
        user_id: u.id.0,
        username: u.sip_username,
        realm: u.realm,
        mobile: u.mobile,
        forwarding,
    }
}

/// Writes a finished call to the call log (through the writer thread; a full queue is
/// logged, never waited for).
fn log_call(db: &StoreHandle, finished: crate::engine::b2bua::FinishedCall) {
    let c = &finished.call;
    // Debug, not info: at carrier call rates one line per call floods the journal; the
    // call log holds every call anyway.
    tracing::debug!(
        call = c.id.0,
        outcome = ?c.outcome,
        talk_ms = c.talk_ms(),
        reason = c.end_reason.as_deref().unwrap_or(""),
        "call ended"
    );
    let reply = db.write_call(calllog::record(&finished));
    tokio::spawn(async move {
        if let Err(e) = reply.await {
            tracing::warn!(error = %e, "writing the call log failed");
        }
    });
}

fn persist(db: &StoreHandle, change: BindingChange) {
    let reply = match change {
        BindingChange::Upsert(b) => db.upsert_binding(to_store(b)),
        BindingChange::Remove { aor, contact } => {
            let r = db.remove_binding(&aor, &contact);
            tokio::spawn(async move {
                if let Err(e) = r.await {
                    tracing::warn!(error = %e, "removing a registration failed");
                }
            });
            return;
        }
    };
    tokio::spawn(async move {
        if let Err(e) = reply.await {
            tracing::warn!(error = %e, "saving a registration failed");
        }
    });
}

fn to_store(b: Binding) -> crate::store::Binding {
    crate::store::Binding {
        user_id: crate::store::UserId(b.user_id),
        aor: b.aor,
        contact: b.contact,
        contact_params: b.contact_params,
        expires_at: b.expires_at as i64,
        q: b.q,
        call_id: b.call_id,
        cseq: b.cseq,
        source: b.source,
        instance: b.instance,
        reg_id: b.reg_id,
        path: None,
        user_agent: b.user_agent,
        updated_at: b.updated_at as i64,
    }
}

fn from_store(b: crate::store::Binding) -> Binding {
    Binding {
        user_id: b.user_id.0,
        aor: b.aor,
        contact: b.contact,
        contact_params: b.contact_params,
        expires_at: b.expires_at.max(0) as u64,
        q: b.q,
        call_id: b.call_id,
        cseq: b.cseq,
        source: b.source,
        instance: b.instance,
        reg_id: b.reg_id,
        user_agent: b.user_agent,
        updated_at: b.updated_at.max(0) as u64,
    }
}

/// Shuts down on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Runs `f` with a fresh multi-threaded runtime (used by `main`).
pub fn block_on<F: Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sentralbord")
        .build()
        .context("starting the async runtime")?;
    Ok(rt.block_on(f))
}
