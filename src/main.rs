//! Strongroom: a key-management service and certificate authority. KMIP over mutual TLS,
//! keys generated and sealed in a PKCS#11 HSM, metadata and audit in SQLite or PostgreSQL.

mod acme;
mod admin;
mod app;
mod audit;
mod authz;
mod ca;
mod chacha;
mod config;
mod creds;
mod der;
mod hsm;
mod http;
mod kdf;
mod kmip_server;
mod metrics;
mod oaep;
mod policy;
mod store;
mod tde;
mod tls;
mod util;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use config::{Overrides, RawConfig};

/// Each request builds and drops many small trees (TTLV, attributes, audit events) on
/// several threads; glibc's allocator spent a sixth of the server's time on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "strongroom", version, about = "Key management service and certificate authority")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Args, Default)]
struct Common {
    /// Data directory: database, SoftHSM token, CA certificate (default ./strongroom-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML config file (keys documented in config/strongroom.toml); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Store URL, overriding `[store] url`: sqlite://PATH or postgres://USER@HOST/DATABASE.
    #[arg(long)]
    store_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default command).
    Serve {
        #[command(flatten)]
        common: Common,
        /// KMIP listener address (default 127.0.0.1:5696).
        #[arg(long)]
        kmip_listen: Option<SocketAddr>,
        /// HTTPS listener address (default 127.0.0.1:8443).
        #[arg(long)]
        http_listen: Option<SocketAddr>,
    },
    /// Issue a KMIP client certificate: writes NAME.crt, NAME.key and ca.crt into OUT.
    ClientCert {
        #[command(flatten)]
        common: Common,
        /// Subject common name; it becomes the client's identity.
        #[arg(long)]
        name: String,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Validity in days (at most the issuing intermediate's remaining life).
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(i64).range(1..))]
        days: i64,
    },
    /// Let another client identity run named KMIP operations on an object (works while the
    /// server runs); with --revoke, withdraw them.
    Grant {
        #[command(flatten)]
        common: Common,
        /// The object's Unique Identifier.
        #[arg(long)]
        object: String,
        /// The identity: a client certificate subject such as "CN=payments".
        #[arg(long)]
        to: String,
        /// KMIP operation names, comma-separated (for example Get,Encrypt,Decrypt).
        #[arg(long, value_delimiter = ',', required = true)]
        operations: Vec<String>,
        /// Withdraw the grants instead.
        #[arg(long)]
        revoke: bool,
    },
    /// Manage the versioned TDE keys that databases read from /v1/tde (works while the
    /// server runs).
    Tde {
        #[command(subcommand)]
        action: TdeCommand,
    },
    /// Copy the database (with the sealed key material) to a file; works while the server
    /// runs. The keys open only with the same HSM token.
    Backup {
        #[command(flatten)]
        common: Common,
        /// The backup file to write (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Replace the database with a backup, after checking its keys open with this HSM. Stop
    /// the server first.
    Restore {
        #[command(flatten)]
        common: Common,
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
    },
    /// Check or export the audit trail (works while the server runs).
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Administer a running server over its HTTPS API (any replica, from any host): status,
    /// keys, certificates and leases, revocation. Authorised by the token's policies and
    /// audited by the server; prints JSON.
    Admin {
        #[command(flatten)]
        common: Common,
        /// The server's HTTPS listener, HOST:PORT (default: `[http] listen` of the config,
        /// 127.0.0.1:8443).
        #[arg(long)]
        addr: Option<String>,
        /// File holding the API token (default DATA/admin.token). The STRONGROOM_TOKEN
        /// environment variable, when set, is used instead.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// CA certificate the listener's certificate chains to (default DATA/ca.crt).
        #[arg(long)]
        ca: Option<PathBuf>,
        #[command(subcommand)]
        action: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Version, store, leadership, HSM, CA certificate, counts, CRL and audit seal ages.
    Status,
    /// Managed objects, oldest first, with their names.
    Keys {
        #[arg(long, default_value_t = 0)]
        offset: i64,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// One managed object: lifecycle fields and attributes.
    Key { id: String },
    /// Issued certificates (API and ACME), newest first.
    Certs {
        #[arg(long, default_value_t = 0)]
        offset: i64,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Lease ids under a prefix (such as database/creds/ROLE/).
    Leases { prefix: String },
    /// Revoke a certificate by serial number (hex); the CRL and OCSP follow.
    RevokeCert { serial: String },
    /// Revoke a lease now (its credential is removed).
    RevokeLease { id: String },
    /// The CA's root and intermediates (the last one issues).
    Issuers,
    /// Rotate the CA: a new intermediate, signed by the root in the HSM, becomes the
    /// default issuer; certificates from older ones stay valid and revocable.
    RotateCa,
    /// Rotate the root: a new root key in the HSM, cross-signed by the current root (so
    /// chains still reach DATA/ca.crt), and a new default intermediate under it.
    RotateRoot,
    /// Revoke an intermediate that is not the default issuer (rotate first): its root's
    /// CRL lists it and client certificates under it are refused.
    RevokeIssuer {
        id: String,
        /// RFC 5280 reason code (1 keyCompromise, 2 cACompromise, 4 superseded, ...).
        #[arg(long)]
        reason: Option<i64>,
    },
}

impl AdminCommand {
    fn into_action(self) -> admin::Action {
        match self {
            AdminCommand::Status => admin::Action::Status,
            AdminCommand::Keys { offset, limit } => admin::Action::Keys { offset, limit },
            AdminCommand::Key { id } => admin::Action::Key { id },
            AdminCommand::Certs { offset, limit } => admin::Action::Certs { offset, limit },
            AdminCommand::Leases { prefix } => admin::Action::Leases { prefix },
            AdminCommand::RevokeCert { serial } => admin::Action::RevokeCert { serial },
            AdminCommand::RevokeLease { id } => admin::Action::RevokeLease { id },
            AdminCommand::Issuers => admin::Action::Issuers,
            AdminCommand::RotateCa => admin::Action::RotateCa,
            AdminCommand::RotateRoot => admin::Action::RotateRoot,
            AdminCommand::RevokeIssuer { id, reason } => admin::Action::RevokeIssuer { id, reason },
        }
    }
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the audit hash chain and check its HSM seals; names the first tampered
    /// record and exits non-zero if any.
    Verify {
        #[command(flatten)]
        common: Common,
    },
    /// Write the audit records as JSON lines (one object per record) to standard output.
    Export {
        #[command(flatten)]
        common: Common,
        /// Only records after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
}

#[derive(Subcommand)]
enum TdeCommand {
    /// Create key NAME, version 1, generated in the HSM.
    Create {
        #[command(flatten)]
        common: Common,
        name: String,
        /// AES key length: 128, 192 or 256.
        #[arg(long, default_value_t = 256)]
        bits: i32,
        /// KMIP identity to own the key (a certificate subject such as "CN=mariadb").
        #[arg(long)]
        owner: Option<String>,
    },
    /// Add a version to key NAME (KMIP Re-key of its latest version).
    Rotate {
        #[command(flatten)]
        common: Common,
        name: String,
    },
    /// List key NAME's versions with their managed objects and states.
    Show {
        #[command(flatten)]
        common: Common,
        name: String,
    },
    /// Destroy versions of key NAME (all, freeing the name, unless --versions is given).
    Destroy {
        #[command(flatten)]
        common: Common,
        name: String,
        /// Version numbers, comma-separated.
        #[arg(long, value_delimiter = ',')]
        versions: Vec<u32>,
        /// Confirm: data a database encrypted under these versions becomes unreadable.
        #[arg(long)]
        force: bool,
    },
}

impl Command {
    fn common(&self) -> &Common {
        match self {
            Command::Serve { common, .. }
            | Command::ClientCert { common, .. }
            | Command::Grant { common, .. }
            | Command::Backup { common, .. }
            | Command::Restore { common, .. }
            | Command::Admin { common, .. } => common,
            Command::Audit { action: AuditCommand::Verify { common } }
            | Command::Audit { action: AuditCommand::Export { common, .. } } => common,
            Command::Tde { action } => match action {
                TdeCommand::Create { common, .. }
                | TdeCommand::Rotate { common, .. }
                | TdeCommand::Show { common, .. }
                | TdeCommand::Destroy { common, .. } => common,
            },
        }
    }
}

impl TdeCommand {
    fn into_action(self) -> tde::CliAction {
        match self {
            TdeCommand::Create { name, bits, owner, .. } => {
                tde::CliAction::Create { name, bits, owner }
            }
            TdeCommand::Rotate { name, .. } => tde::CliAction::Rotate { name },
            TdeCommand::Show { name, .. } => tde::CliAction::Show { name },
            TdeCommand::Destroy { name, versions, force, .. } => {
                tde::CliAction::Destroy { name, versions, force }
            }
        }
    }
}

fn main() -> ExitCode {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRONGROOM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    if std::env::var("STRONGROOM_LOG_FORMAT").as_deref() == Ok("json") {
        // One JSON object per line (time, level, target, message, fields), for collectors.
        logs.json().with_current_span(false).init();
    } else {
        // Colour only for a terminal: log files and journald get plain text.
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strongroom: {e}");
            let mut source = std::error::Error::source(e.as_ref());
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let command = cli.command.unwrap_or(Command::Serve {
        common: Common::default(),
        kmip_listen: None,
        http_listen: None,
    });
    let overrides = match &command {
        Command::Serve { kmip_listen, http_listen, .. } => Overrides {
            kmip_listen: *kmip_listen,
            http_listen: *http_listen,
            ..Overrides::default()
        },
        _ => Overrides::default(),
    };
    let common = command.common();
    let raw = match &common.config {
        Some(path) => RawConfig::load(path)?,
        None => RawConfig::default(),
    };
    let settings = raw.into_settings(Overrides {
        data_dir: common.data_dir.clone(),
        store_url: common.store_url.clone(),
        ..overrides
    })?;
    // Admin commands talk to a server's API: no HSM or store of their own to prepare.
    if let Command::Admin { addr, token_file, ca, action, .. } = command {
        return run_admin(&settings, addr, token_file, ca, action);
    }
    // Commands that read what a server made start nothing new: a mistyped --data-dir would
    // otherwise get a fresh, empty database (and a backup of nothing would "succeed").
    let reads_existing = matches!(
        command,
        Command::Backup { .. }
            | Command::Audit { .. }
            | Command::Grant { .. }
            | Command::Tde { .. }
    );
    if let (true, store::Location::Sqlite(db)) = (reads_existing, &settings.store) {
        if !db.exists() {
            return Err(format!(
                "no database at {} (is --data-dir right? `strongroom serve` creates it)",
                db.display()
            )
            .into());
        }
    }
    let (hsm, softhsm_conf) = app::prepare(&settings)?;
    if let Some(conf) = softhsm_conf {
        // No thread exists yet: the runtime is built below, after this.
        std::env::set_var("SOFTHSM2_CONF", conf);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match command {
            Command::Serve { .. } => app::serve(settings, hsm).await,
            Command::ClientCert { name, out, days, .. } => {
                app::client_cert(settings, hsm, &name, &out, days).await
            }
            Command::Grant { object, to, operations, revoke, .. } => {
                app::grant(settings, &object, &to, &operations, revoke).await
            }
            Command::Tde { action } => app::tde(settings, hsm, action.into_action()).await,
            Command::Backup { out, .. } => app::backup(settings, &out).await,
            Command::Restore { from, .. } => app::restore(settings, hsm, &from).await,
            Command::Audit { action: AuditCommand::Verify { .. } } => {
                app::audit_verify(settings, hsm).await
            }
            Command::Audit { action: AuditCommand::Export { after, .. } } => {
                app::audit_export(settings, hsm, after).await
            }
            // Returned above, before the HSM was prepared.
            Command::Admin { .. } => Ok(()),
        }
    })?;
    Ok(())
}

/// `strongroom admin`: the target from flags, config and data directory, then the call.
fn run_admin(
    settings: &config::Settings,
    addr: Option<String>,
    token_file: Option<PathBuf>,
    ca: Option<PathBuf>,
    action: AdminCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    let token = match std::env::var("STRONGROOM_TOKEN") {
        Ok(token) => token,
        Err(_) => {
            let path = token_file.unwrap_or_else(|| settings.data_dir.join("admin.token"));
            std::fs::read_to_string(&path)
                .map_err(|e| format!("API token from {}: {e}", path.display()))?
                .trim()
                .to_owned()
        }
    };
    let target = admin::Target {
        addr: addr.unwrap_or_else(|| {
            // A wildcard listener is reached on loopback, which its certificate names.
            let mut listen = settings.http_listen;
            if listen.ip().is_unspecified() {
                listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            listen.to_string()
        }),
        token,
        ca: ca.unwrap_or_else(|| settings.data_dir.join("ca.crt")),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(admin::run(&target, action.into_action()))?;
    Ok(())
}
