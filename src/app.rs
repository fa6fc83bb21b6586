//! Builds the shared state (HSM, CA, store), starts the listeners and background
//! work, and shuts down gracefully on SIGINT or SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::ca::{Ca, CaError};
use crate::config::{PinSource, Settings};
use crate::hsm::{Hsm, HsmError, HsmSettings};
use crate::store::{AuditEvent, Store, StoreError};
use crate::tls::{ClientAuth, TlsError};

/// What every request handler shares; cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Store,
    pub(crate) hsm: Hsm,
    pub(crate) ca: Arc<Ca>,
    /// Decode limits for KMIP messages, whichever transport and encoding bring them.
    pub(crate) kmip_limits: kmip::ttlv::binary::Limits,
    /// The Lease Time of cryptographic objects, seconds (`[kmip] lease_time_secs`; 0: none).
    pub(crate) kmip_lease_time: u32,
    /// Whether KMIP Interop is answered (`[kmip] interop`, for test runs only).
    pub(crate) kmip_interop: bool,
    /// PKCS#11 contexts KMIP clients opened (the PKCS#11 operation).
    pub(crate) kmip_pkcs11: crate::kmip_server::ops::pkcs11::Contexts,
    /// Identities that may act on every object.
    pub(crate) admins: Arc<std::collections::HashSet<String>>,
    /// Username/password credentials accepted in KMIP request headers.
    pub(crate) credentials: Arc<crate::authz::Credentials>,
    /// The secrets engines (database credentials, certificates) and their leases.
    pub(crate) creds: crate::creds::Creds,
    /// Versioned TDE keys served to databases.
    pub(crate) tde: crate::tde::Tde,
    /// The ACME server's nonces and validation settings.
    pub(crate) acme: crate::acme::Acme,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret from environment variable {0}: it is not set")]
    PinEnv(String),
    #[error("{0:?} is not a KMIP operation name (for example Get, Encrypt, Get Attributes)")]
    UnknownOperation(String),
    #[error("no object {0}")]
    NoSuchObject(String),
    #[error(transparent)]
    Tde(#[from] crate::tde::TdeError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error("the audit trail was tampered with")]
    Tampered,
    #[error("{0} already exists; choose another file")]
    Exists(PathBuf),
    #[error("the backup's key material is sealed by another HSM key ({0}); restore it where that HSM token is")]
    ForeignBackup(HsmError),
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("{0} is in use (a server runs on it, or a restore): stop it first")]
    InUse(PathBuf),
}

/// A lock beside an SQLite database: every server holds it shared while it runs, and a
/// restore, which replaces the file, takes it alone.
fn lock_database(db: &Path, alone: bool) -> Result<std::fs::File, AppError> {
    let path = PathBuf::from(format!("{}.lock", db.display()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    let locked = if alone { file.try_lock() } else { file.try_lock_shared() };
    match locked {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(AppError::InUse(db.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => Err(io(&path)(e)),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AppError + '_ {
    move |source| AppError::Io { path: path.to_owned(), source }
}

/// Prepares the data directory and, for the embedded SoftHSM, its token files. Runs before
/// any thread starts: it returns the SOFTHSM2_CONF value for `main` to set.
pub(crate) fn prepare(settings: &Settings) -> Result<(HsmSettings, Option<PathBuf>), AppError> {
    let dir = &settings.data_dir;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(io(dir))?;
    let h = &settings.hsm;
    let (user_pin, so_pin, conf) = if h.managed_softhsm {
        let token = crate::hsm::softhsm::prepare(dir)?;
        (token.user_pin, Some(token.so_pin), Some(token.conf))
    } else {
        (read_secret(&h.pin)?, None, None)
    };
    let hsm = HsmSettings {
        module: h.module.clone(),
        token_label: h.token_label.clone(),
        user_pin,
        so_pin,
        max_sessions: h.max_sessions,
    };
    Ok((hsm, conf))
}

/// Reads a PIN or password from a file (trimmed) or an environment variable.
fn read_secret(source: &PinSource) -> Result<String, AppError> {
    match source {
        PinSource::File(p) => Ok(std::fs::read_to_string(p).map_err(io(p))?.trim().to_owned()),
        PinSource::Env(v) => std::env::var(v).map_err(|_| AppError::PinEnv(v.clone())),
        // Settings validation pairs DataDir with the managed SoftHSM, read elsewhere.
        PinSource::DataDir => Ok(String::new()),
    }
}

/// Opens the HSM, the CA and the store (bootstrapping all on first start).
pub(crate) async fn open(settings: &Settings, hsm: HsmSettings) -> Result<AppState, AppError> {
    open_for(settings, hsm, false).await
}

/// [`open`], and with `serving` also the listeners' TLS key, made under the same
/// bootstrap lock (the command-line tools leave the token as it is).
async fn open_for(
    settings: &Settings,
    hsm: HsmSettings,
    serving: bool,
) -> Result<AppState, AppError> {
    let data_dir = settings.data_dir.clone();
    let ca_settings = settings.ca.clone();
    let store = Store::open(&settings.store).await?;
    let bootstrap = store.bootstrap().await?;
    let (hsm, ca) = tokio::task::spawn_blocking(move || -> Result<_, AppError> {
        let hsm = Hsm::open(&hsm)?;
        let ca = Ca::load_or_create(&hsm, &data_dir, &ca_settings)?;
        if serving {
            crate::ca::ensure_tls_key(&hsm)?;
        }
        Ok((hsm, ca))
    })
    .await??;
    let ca = Arc::new(ca);
    crate::ca::sync_issuers(&ca, &store, true).await?;
    let linked = store.link_certified_objects().await?;
    if linked > 0 {
        tracing::info!(linked, "certificates from KMIP Certify linked to their objects");
    }
    let kmip_limits = kmip::ttlv::binary::Limits {
        max_bytes: settings.kmip.max_message_bytes,
        ..kmip::ttlv::binary::Limits::default()
    };
    let admins = Arc::new(settings.admins.iter().cloned().collect());
    let mut credentials = crate::authz::Credentials::default();
    for c in &settings.kmip.credentials {
        credentials.insert(&c.username, &read_secret(&c.password)?, &c.identity);
    }
    let credentials = Arc::new(credentials);
    ensure_admin_token(&store, &settings.data_dir).await?;
    bootstrap.release().await;
    let creds = crate::creds::Creds::new(store.clone(), hsm.clone(), ca.clone());
    let tde = crate::tde::Tde::new(settings.tde_mount.clone());
    let acme =
        crate::acme::Acme::new(settings.acme.clone(), store.is_shared().then(|| store.clone()));
    let kmip_lease_time = settings.kmip.lease_time;
    let kmip_interop = settings.kmip.interop;
    Ok(AppState {
        store,
        hsm,
        ca,
        kmip_limits,
        kmip_lease_time,
        kmip_interop,
        kmip_pkcs11: Default::default(),
        admins,
        credentials,
        creds,
        tde,
        acme,
    })
}

/// On first start (or whenever no live token is left), creates a token with the root policy and writes it to `DATA/admin.token`
/// (owner-readable only), for the first API calls. The store keeps only its digest.
async fn ensure_admin_token(store: &Store, data_dir: &Path) -> Result<(), AppError> {
    if store.has_tokens().await? {
        return Ok(());
    }
    let root = [crate::authz::ROOT_POLICY.to_owned()];
    let (token, row) =
        crate::authz::mint_token(store, "initial admin", &root, None, "first start").await?;
    let path = data_dir.join("admin.token");
    if let Err(e) = crate::hsm::softhsm::write_private(&path, &format!("{token}\n")) {
        // Nobody could use it; the next start makes another.
        store.revoke_token(&row.accessor, crate::util::now()).await?;
        return Err(e.into());
    }
    store
        .audit(AuditEvent {
            at: crate::util::now(),
            principal: "strongroom".to_owned(),
            protocol: "cli",
            operation: "create-admin-token".to_owned(),
            object_id: None,
            outcome: "ok".to_owned(),
            detail: Some(format!(
                "initial admin token (accessor {}) written to {}",
                row.accessor,
                path.display()
            )),
        })
        .await;
    Ok(())
}

/// Runs the service until SIGINT or SIGTERM.
pub(crate) async fn serve(settings: Settings, hsm: HsmSettings) -> Result<(), AppError> {
    let _database_in_use = match &settings.store {
        crate::store::Location::Sqlite(db) => Some(lock_database(db, false)?),
        crate::store::Location::Postgres(_) => None,
    };
    let state = open_for(&settings, hsm, true).await?;
    if !settings.acme.preauthorized.is_empty() && !settings.acme.eab_required {
        tracing::warn!(
            "[acme] preauthorized names are granted to any client that can register: a \
             client certificate's subject is an identity here; consider \
             external_account_required with EAB keys limited to profiles"
        );
    }
    let (server, signer) = {
        let (ca, hsm, hostnames) =
            (state.ca.clone(), state.hsm.clone(), settings.hostnames.clone());
        tokio::task::spawn_blocking(move || ca.current().issue_server(&hsm, &hostnames)).await??
    };
    let cert_path = settings.data_dir.join("server.crt");
    let chain_pem = state.ca.chain_pem(&server);
    std::fs::write(&cert_path, &chain_pem).map_err(io(&cert_path))?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(chain_pem.as_bytes()).filter_map(Result::ok).collect();
    let kmip_tls = crate::tls::server_config(
        chain.clone(),
        signer.clone(),
        state.ca.clone(),
        ClientAuth::Required,
    )?;
    let http_tls =
        crate::tls::server_config(chain, signer, state.ca.clone(), ClientAuth::Optional)?;

    let bind = |addr| async move {
        TcpListener::bind(addr).await.map_err(|source| AppError::Bind { addr, source })
    };
    let kmip_listener = bind(settings.kmip_listen).await?;
    let http_listener = bind(settings.http_listen).await?;
    let revocation_listener = match settings.ca.http_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let ops_listener = match settings.ops_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let kmip_addr = kmip_listener.local_addr().map_err(io(&settings.data_dir))?;
    let http_addr = http_listener.local_addr().map_err(io(&settings.data_dir))?;
    // Tests and scripts read these lines to learn the ports chosen for port 0. A reader
    // that stopped reading is no reason to stop serving.
    let mut lines =
        vec![format!("KMIP listening on {kmip_addr}"), format!("HTTPS listening on {http_addr}")];
    if let Some(l) = &revocation_listener {
        let addr = l.local_addr().map_err(io(&settings.data_dir))?;
        lines.push(format!("CRL/OCSP (HTTP) listening on {addr}"));
    }
    if let Some(l) = &ops_listener {
        let addr = l.local_addr().map_err(io(&settings.data_dir))?;
        lines.push(format!("Health/metrics (HTTP) listening on {addr}"));
    }
    for line in lines {
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), "{line}");
    }
    tracing::info!(
        %kmip_addr,
        %http_addr,
        data_dir = %settings.data_dir.display(),
        store = %settings.store.display(),
        "Strongroom started"
    );

    let (stop, stopped) = watch::channel(false);
    let kmip = tokio::spawn(crate::kmip_server::serve(
        kmip_listener,
        kmip_tls,
        state.clone(),
        settings.kmip.clone(),
        stopped.clone(),
    ));
    // The HTTP listeners take the KMIP listener's bounds.
    let limits = crate::http::Limits {
        max_connections: settings.kmip.max_connections,
        request_deadline: settings.kmip.request_timeout,
    };
    let http = tokio::spawn(crate::http::serve(
        http_listener,
        http_tls,
        state.clone(),
        limits,
        stopped.clone(),
    ));
    let plain = |l, app, label| {
        tokio::spawn(crate::http::serve_plain(l, app, label, limits, stopped.clone()))
    };
    let revocation = revocation_listener
        .map(|l| plain(l, crate::http::revocation_router(state.clone()), "CRL/OCSP"));
    let ops = ops_listener.map(|l| plain(l, crate::http::ops_router(state.clone()), "ops"));
    let dates = tokio::spawn(housekeeping(state.clone(), stopped.clone()));
    let reaper = tokio::spawn(crate::creds::run_reaper(state.creds.clone(), stopped.clone()));
    let crl =
        tokio::spawn(crate::creds::pki::run_crl_refresher(state.creds.clone(), stopped.clone()));
    let sealer = tokio::spawn(crate::audit::run_sealer(
        state.store.clone(),
        state.hsm.clone(),
        stopped.clone(),
    ));
    let election = tokio::spawn({
        let store = state.store.clone();
        async move { store.run_election(stopped).await }
    });

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let _ = tokio::join!(kmip, http, dates, reaper, sealer, crl, election);
    for task in revocation.into_iter().chain(ops) {
        let _ = task.await;
    }
    state.store.flush().await;
    Ok(())
}

/// Keeps stored states in line with Activation and Deactivation Dates every second, so
/// Locate by State sees what Get would report, and rotates keys whose Rotate Interval has
/// passed; forgets expired shared ACME nonces and long-expired ACME orders every minute;
/// on a shared store, loads intermediates other replicas created every 10 s.
async fn housekeeping(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut ticks = 0u64;
    let mut rotation_failures = std::collections::HashMap::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                ticks += 1;
                // Another replica may have rotated the CA.
                if state.store.is_shared() && ticks.is_multiple_of(10) {
                    if let Err(e) = crate::ca::sync_issuers(&state.ca, &state.store, false).await {
                        tracing::warn!(error = %e, "loading the CA's intermediates failed");
                    }
                }
                if !state.store.is_leader() {
                    continue;
                }
                if let Err(e) = state.store.apply_due_dates(crate::util::now()).await {
                    tracing::warn!(error = %e, "applying activation/deactivation dates failed");
                }
                if let Err(e) =
                    crate::kmip_server::rotation::rotate_due(&state, &mut rotation_failures).await
                {
                    tracing::warn!(error = %e, "looking for keys due for rotation failed");
                }
                if ticks.is_multiple_of(60) {
                    if let Err(e) = state.acme.purge_nonces().await {
                        tracing::warn!(error = %e, "purging expired ACME nonces failed");
                    }
                }
                if ticks % 60 == 30 {
                    match state.acme.purge_orders(&state.store).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(orders = n, "purged expired ACME orders"),
                        Err(e) => tracing::warn!(error = %e, "purging expired ACME orders failed"),
                    }
                }
            }
            _ = stop.changed() => break,
        }
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// `strongroom client-cert`: issues a client certificate signed by the internal CA (in the
/// HSM) and writes NAME.crt, NAME.key and ca.crt into `out`.
pub(crate) async fn client_cert(
    settings: Settings,
    hsm: HsmSettings,
    name: &str,
    out: &Path,
    days: i64,
) -> Result<(), AppError> {
    let state = open(&settings, hsm).await?;
    let (issued, serial, key_pem) = {
        let (ca, name) = (state.ca.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || ca.current().issue_client(&name, days)).await??
    };
    // Recorded like every certificate the CA issues, so that it can be revoked (by serial,
    // `/v1/pki/revoke`) and OCSP knows it.
    let record = crate::store::CertificateRow {
        serial: serial.clone(),
        role: "client-cert".to_owned(),
        subject: format!("CN={name}"),
        not_before: crate::util::now(),
        not_after: issued.not_after.unix_timestamp(),
        lease_id: None,
        revoked_at: None,
        revocation_reason: None,
        pem: issued.cert_pem.clone(),
        issuer: issued.issuer.clone(),
        kmip_object: None,
    };
    state.store.insert_certificate(&record).await?;
    std::fs::create_dir_all(out).map_err(io(out))?;
    // The certificate followed by its issuing intermediate, so TLS clients send the chain.
    let crt = out.join(format!("{name}.crt"));
    std::fs::write(&crt, state.ca.chain_pem(&issued)).map_err(io(&crt))?;
    crate::hsm::softhsm::write_private(&out.join(format!("{name}.key")), &key_pem)?;
    let ca = out.join("ca.crt");
    std::fs::write(&ca, state.ca.root().cert_pem()).map_err(io(&ca))?;
    let detail = format!("issued KMIP client certificate {serial} for CN={name}");
    audit_cli(&state.store, "client-cert", None, "ok", detail).await;
    println!("wrote {} and its key, and ca.crt, to {}", crt.display(), out.display());
    Ok(())
}

/// `strongroom grant`: records (or withdraws) grants of KMIP operations on an object to
/// another identity. Local administration: whoever can write the data directory.
pub(crate) async fn grant(
    settings: Settings,
    object: &str,
    to: &str,
    operations: &[String],
    revoke: bool,
) -> Result<(), AppError> {
    let mut names = Vec::new();
    // As the specification spells it ("Re-key", "Get Attributes") or as the XML and JSON
    // encodings do ("ReKey", "GetAttributes"), in any case.
    let plain = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    for op in operations {
        let wanted = plain(op).to_lowercase();
        let found = kmip::enums::Operation::ALL
            .iter()
            .map(|(_, name)| *name)
            .find(|name| {
                plain(name).to_lowercase() == wanted
                    || kmip::ttlv::text::encoded_name(name).to_lowercase() == wanted
            })
            .ok_or_else(|| AppError::UnknownOperation(op.clone()))?;
        names.push(found.to_owned());
    }
    let store = Store::open(&settings.store).await?;
    if store.object(object).await?.is_none() {
        return Err(AppError::NoSuchObject(object.to_owned()));
    }
    let now = crate::util::now();
    let (operation, detail) = if revoke {
        let n = store.revoke_grants(object, to, &names).await?;
        ("revoke-grant", format!("{to}: {} ({n} withdrawn)", names.join(", ")))
    } else {
        store.grant(object, to, &names, "local administrator", now).await?;
        ("grant", format!("{to}: {}", names.join(", ")))
    };
    audit_cli(&store, operation, Some(object), "ok", detail.clone()).await;
    println!("{operation} on {object}: {detail}");
    Ok(())
}

/// `strongroom tde ACTION`: manages TDE keys directly in the store and the HSM (also
/// while the server runs), audited as the local administrator.
pub(crate) async fn tde(
    settings: Settings,
    hsm: HsmSettings,
    action: crate::tde::CliAction,
) -> Result<(), AppError> {
    let state = open(&settings, hsm).await?;
    let what = format!("{action:?}");
    let result = crate::tde::run_cli(&state, action).await;
    let (outcome, detail) = match &result {
        Ok(out) => ("ok", out.clone()),
        Err(e) => ("failed", e.to_string()),
    };
    audit_cli(&state.store, &format!("tde {what}"), None, outcome, detail).await;
    println!("{}", result?);
    Ok(())
}

/// Records what a command-line invocation did, as the local administrator, and waits until
/// the record is stored (the process exits right after).
async fn audit_cli(
    store: &Store,
    operation: &str,
    object_id: Option<&str>,
    outcome: &str,
    detail: String,
) {
    store
        .audit(AuditEvent {
            at: crate::util::now(),
            principal: "local administrator".to_owned(),
            protocol: "cli",
            operation: operation.to_owned(),
            object_id: object_id.map(str::to_owned),
            outcome: outcome.to_owned(),
            detail: Some(detail),
        })
        .await;
    store.flush().await;
}

/// `strongroom audit verify`: checks the hash chain and the seals; an error if tampered.
pub(crate) async fn audit_verify(settings: Settings, hsm: HsmSettings) -> Result<(), AppError> {
    let state = open(&settings, hsm).await?;
    let report = crate::audit::verify(&state.store, &state.hsm).await?;
    println!("{report}");
    if report.problems.is_empty() {
        Ok(())
    } else {
        Err(AppError::Tampered)
    }
}

/// `strongroom audit export`: the records after `after` as JSON lines on standard output.
pub(crate) async fn audit_export(
    settings: Settings,
    hsm: HsmSettings,
    after: i64,
) -> Result<(), AppError> {
    let state = open(&settings, hsm).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    crate::audit::export(&state.store, after, &mut out).await?;
    Ok(())
}

/// `strongroom backup`: a consistent copy of the database (objects with their sealed
/// material, metadata, leases, certificates, audit) at `out`; works while the server runs.
pub(crate) async fn backup(settings: Settings, out: &Path) -> Result<(), AppError> {
    if out.exists() {
        return Err(AppError::Exists(out.to_owned()));
    }
    let store = Store::open(&settings.store).await?;
    // Written in a directory only the owner can enter, then moved into place: the copy is
    // never readable by others, whatever the umask the dump tools create it with.
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staging = out.with_file_name(format!(".{name}.{}", crate::util::uuid_v4()));
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&staging)
        .map_err(io(&staging))?;
    let copy = staging.join("backup");
    let written = async {
        match &settings.store {
            crate::store::Location::Postgres(url) => {
                let (url, path) = (url.clone(), copy.clone());
                tokio::task::spawn_blocking(move || crate::store::pg_backup::dump(&url, &path))
                    .await??;
            }
            crate::store::Location::Sqlite(_) => store.backup_to(&copy).await?,
        }
        std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(io(&copy))?;
        std::fs::rename(&copy, out).map_err(io(out))
    }
    .await;
    let _ = std::fs::remove_dir_all(&staging);
    written?;
    audit_cli(&store, "backup", None, "ok", format!("database copied to {}", out.display())).await;
    println!(
        "backup written to {}; its keys open only with this HSM token (for SoftHSM, keep a \
         copy of {}/hsm with it)",
        out.display(),
        settings.data_dir.display()
    );
    Ok(())
}

/// Restores a PostgreSQL store from a `pg_dump` backup, after checking that a sealed key in
/// it opens with this HSM (read from the dump itself, before anything is replaced).
async fn restore_postgres(url: &str, hsm: HsmSettings, from: &Path) -> Result<(), AppError> {
    use crate::store::pg_backup;
    let path = from.to_owned();
    let sealed = tokio::task::spawn_blocking(move || pg_backup::sealed_object_in(&path)).await??;
    let hsm = tokio::task::spawn_blocking(move || Hsm::open(&hsm)).await??;
    if let Some((id, sealed)) = sealed {
        hsm.open_sealed_async(sealed, id).await.map_err(AppError::ForeignBackup)?;
    }
    let (target, path) = (url.to_owned(), from.to_owned());
    tokio::task::spawn_blocking(move || pg_backup::restore(&target, &path)).await??;
    let store = Store::open(&crate::store::Location::Postgres(url.to_owned())).await?;
    audit_cli(&store, "restore", None, "ok", format!("restored from {}", from.display())).await;
    store.close().await;
    println!("restored the PostgreSQL store from {}", from.display());
    Ok(())
}

/// `strongroom restore`: replaces the database with a backup, after checking the backup's
/// key material opens with this HSM. Run it with the server stopped.
pub(crate) async fn restore(
    settings: Settings,
    hsm: HsmSettings,
    from: &Path,
) -> Result<(), AppError> {
    let db = match &settings.store {
        crate::store::Location::Sqlite(db) => db,
        crate::store::Location::Postgres(url) => return restore_postgres(url, hsm, from).await,
    };
    // Not under a running server, which would go on writing to the file replaced.
    let _alone = lock_database(db, true)?;
    // SQLite's journal files are named after the database file.
    let beside = |path: &Path, suffix: &str| PathBuf::from(format!("{}{suffix}", path.display()));
    // Work on a copy, so the backup itself stays as it was (opening it runs migrations).
    let staged = beside(db, ".restoring");
    for leftover in [staged.clone(), beside(&staged, "-wal"), beside(&staged, "-shm")] {
        let _ = std::fs::remove_file(leftover);
    }
    std::fs::copy(from, &staged).map_err(io(from))?;
    let candidate = Store::open_sqlite(&staged).await?;
    let hsm = {
        let settings = hsm;
        tokio::task::spawn_blocking(move || Hsm::open(&settings)).await??
    };
    if let Some((id, sealed)) = candidate.any_sealed_object().await? {
        hsm.open_sealed_async(sealed, id).await.map_err(AppError::ForeignBackup)?;
    }
    audit_cli(&candidate, "restore", None, "ok", format!("restored from {}", from.display())).await;
    candidate.close().await;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(beside(db, suffix));
    }
    std::fs::rename(&staged, db).map_err(io(db))?;
    println!("restored {} from {}", db.display(), from.display());
    Ok(())
}
