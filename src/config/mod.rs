//! Configuration in two stages: the raw TOML file (unknown keys are errors) and command-line
//! overrides become validated [`Settings`]. Keys are documented in `config/strongroom.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::store::Location;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    data_dir: Option<PathBuf>,
    #[serde(default)]
    kmip: RawKmip,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    hsm: RawHsm,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    access: RawAccess,
    #[serde(default)]
    tde: RawTde,
    #[serde(default)]
    acme: RawAcme,
    #[serde(default)]
    ca: RawCa,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCa {
    key_type: Option<String>,
    http_listen: Option<SocketAddr>,
    url: Option<String>,
    #[serde(default)]
    permitted_dns_domains: Vec<String>,
    #[serde(default)]
    excluded_dns_domains: Vec<String>,
    #[serde(default)]
    permitted_ip_ranges: Vec<String>,
    #[serde(default)]
    excluded_ip_ranges: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAcme {
    http01_port: Option<u16>,
    tls_alpn01_port: Option<u16>,
    dns_resolver: Option<String>,
    certificate_validity: Option<String>,
    order_retention: Option<String>,
    max_open_orders: Option<u32>,
    external_account_required: Option<bool>,
    #[serde(default)]
    preauthorized: Vec<String>,
    default_profile: Option<String>,
    #[serde(default)]
    profiles: std::collections::BTreeMap<String, RawProfile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    description: Option<String>,
    validity: Option<String>,
    server_auth: Option<bool>,
    client_auth: Option<bool>,
    #[serde(default)]
    identifiers: Vec<String>,
    #[serde(default)]
    excluded_identifiers: Vec<String>,
    revocation_pointers: Option<bool>,
    #[serde(default)]
    key_types: Vec<String>,
    store: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTde {
    mount: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    #[serde(default)]
    admins: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKmip {
    listen: Option<SocketAddr>,
    max_message_bytes: Option<usize>,
    idle_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    lease_time_secs: Option<u32>,
    interop: Option<bool>,
    #[serde(default)]
    credentials: Vec<RawCredential>,
}

/// A username and password a device may send in the request header's Credential.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    username: String,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    identity: Option<String>,
}

/// Where a credential's password comes from, and the identity it maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CredentialConfig {
    pub(crate) username: String,
    pub(crate) password: PinSource,
    pub(crate) identity: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<SocketAddr>,
    ops_listen: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    hostnames: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHsm {
    module: Option<PathBuf>,
    token_label: Option<String>,
    user_pin_file: Option<PathBuf>,
    user_pin_env: Option<String>,
    max_sessions: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<String>,
    /// An environment variable holding the URL (so a password need not be in the file).
    url_env: Option<String>,
}

/// Where the user PIN comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PinSource {
    /// `DATA/hsm/user.pin`, generated on first start (the embedded SoftHSM default).
    DataDir,
    File(PathBuf),
    Env(String),
}

/// The HSM to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HsmConfig {
    pub(crate) module: PathBuf,
    pub(crate) token_label: String,
    pub(crate) pin: PinSource,
    /// Whether Strongroom owns a SoftHSM token in its data dir (and may initialise it).
    pub(crate) managed_softhsm: bool,
    pub(crate) max_sessions: usize,
}

/// KMIP listener limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KmipLimits {
    pub(crate) max_message_bytes: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) max_connections: usize,
    /// The Lease Time of cryptographic objects (Obtain Lease grants it); 0: none.
    pub(crate) lease_time: u32,
    /// Username/password credentials accepted in request headers.
    pub(crate) credentials: Vec<CredentialConfig>,
    /// Whether the Interop operation (for interoperability test runs) is answered.
    pub(crate) interop: bool,
}

/// Validated settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) data_dir: PathBuf,
    pub(crate) kmip_listen: SocketAddr,
    pub(crate) http_listen: SocketAddr,
    /// A plain-HTTP listener for `/health`, `/ready` and `/metrics` only, which answers
    /// while the HSM (holding the TLS key) is away.
    pub(crate) ops_listen: Option<SocketAddr>,
    pub(crate) kmip: KmipLimits,
    pub(crate) hostnames: Vec<String>,
    pub(crate) hsm: HsmConfig,
    pub(crate) store: Location,
    /// Client identities (certificate subjects) that may act on every object.
    pub(crate) admins: Vec<String>,
    /// The API mount serving TDE keys in Vault's KV version 2 format (`/v1/MOUNT/`).
    pub(crate) tde_mount: String,
    pub(crate) acme: crate::acme::AcmeSettings,
    pub(crate) ca: CaSettings,
}

/// The CA's keys and where relying parties find revocation information (`[ca]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CaSettings {
    /// The type of CA keys made from now on (root on first start, intermediates).
    pub(crate) key_type: crate::hsm::SigningKeyType,
    /// A plain-HTTP listener serving CRLs, CA certificates and OCSP (all signed; relying
    /// parties fetch them without TLS).
    pub(crate) http_listen: Option<SocketAddr>,
    /// Base URL (`http://HOST:PORT`, no trailing slash) that certificates name in their CRL
    /// Distribution Points and Authority Information Access extensions.
    pub(crate) url: Option<String>,
    /// Name constraints that intermediates made from now on carry.
    pub(crate) name_constraints: crate::ca::NameConstraints,
}

/// Command-line values that override the file.
#[derive(Debug, Default)]
pub(crate) struct Overrides {
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) kmip_listen: Option<SocketAddr>,
    pub(crate) http_listen: Option<SocketAddr>,
    pub(crate) store_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: &'static str },
}

impl RawConfig {
    pub(crate) fn load(path: &Path) -> Result<RawConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })
    }

    pub(crate) fn into_settings(self, o: Overrides) -> Result<Settings, ConfigError> {
        let data_dir =
            o.data_dir.or(self.data_dir).unwrap_or_else(|| PathBuf::from("strongroom-data"));
        let invalid = |key, reason| ConfigError::Invalid { key, reason };
        let pin = match (self.hsm.user_pin_file, self.hsm.user_pin_env) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "hsm.user_pin_file",
                    "set either user_pin_file or user_pin_env",
                ));
            }
            (Some(f), None) => PinSource::File(f),
            (None, Some(e)) => PinSource::Env(e),
            (None, None) => PinSource::DataDir,
        };
        let default_module = crate::hsm::default_module();
        let module = self.hsm.module.unwrap_or_else(|| default_module.to_owned());
        let managed_softhsm = module == default_module && pin == PinSource::DataDir;
        if pin == PinSource::DataDir && !managed_softhsm {
            return Err(invalid(
                "hsm.user_pin_file",
                "a configured PKCS#11 module needs user_pin_file or user_pin_env",
            ));
        }
        let url = match (o.store_url, self.store.url, self.store.url_env) {
            (Some(url), _, _) => Some(url),
            (None, Some(_), Some(_)) => {
                return Err(invalid("store.url", "set either url or url_env"));
            }
            (None, url, None) => url,
            (None, None, Some(var)) => Some(std::env::var(&var).map_err(|_| {
                invalid("store.url_env", "the environment variable it names is not set")
            })?),
        };
        let store = match url {
            None => Location::Sqlite(data_dir.join("strongroom.db")),
            Some(url) => Location::parse(&url).ok_or_else(|| {
                invalid("store.url", "expected sqlite://PATH or postgres://USER@HOST/DATABASE")
            })?,
        };
        let secs = |v: Option<u64>, d| Duration::from_secs(v.unwrap_or(d));
        let kmip = KmipLimits {
            max_message_bytes: self.kmip.max_message_bytes.unwrap_or(1 << 20),
            idle_timeout: secs(self.kmip.idle_timeout_secs, 300),
            request_timeout: secs(self.kmip.request_timeout_secs, 30),
            max_connections: self.kmip.max_connections.unwrap_or(1024),
            lease_time: self.kmip.lease_time_secs.unwrap_or(3600),
            credentials: Vec::new(),
            interop: self.kmip.interop.unwrap_or(false),
        };
        let mut kmip = kmip;
        for c in self.kmip.credentials {
            let password = match (c.password_file, c.password_env) {
                (Some(f), None) => PinSource::File(f),
                (None, Some(e)) => PinSource::Env(e),
                _ => {
                    return Err(invalid(
                        "kmip.credentials",
                        "each credential needs exactly one of password_file and password_env",
                    ));
                }
            };
            let identity = c.identity.unwrap_or_else(|| format!("user:{}", c.username));
            kmip.credentials.push(CredentialConfig { username: c.username, password, identity });
        }
        if kmip.max_message_bytes < 1024 || kmip.max_message_bytes > 64 << 20 {
            return Err(invalid("kmip.max_message_bytes", "must be between 1 KiB and 64 MiB"));
        }
        let tde_mount = self.tde.mount.unwrap_or_else(|| "tde".to_owned());
        let reserved = ["sys", "auth", "database", "pki", "identity", "kmip", "acme"];
        if tde_mount.is_empty()
            || reserved.contains(&tde_mount.as_str())
            || !tde_mount.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "tde.mount",
                "must be one path segment of letters, digits, '-' or '_', not a built-in one",
            ));
        }
        let acme = acme_settings(self.acme)?;
        let ca_url = match self.ca.url {
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return Err(invalid("ca.url", "must be an http:// or https:// URL"));
            }
            url => url.map(|u| u.trim_end_matches('/').to_owned()),
        };
        use crate::hsm::{Curve, SigningKeyType};
        let key_type = match self.ca.key_type.as_deref() {
            None | Some("p256") => SigningKeyType::Ec(Curve::P256),
            Some("p384") => SigningKeyType::Ec(Curve::P384),
            Some("rsa2048") => SigningKeyType::Rsa { bits: 2048 },
            Some("rsa3072") => SigningKeyType::Rsa { bits: 3072 },
            Some("rsa4096") => SigningKeyType::Rsa { bits: 4096 },
            Some(_) => {
                return Err(invalid(
                    "ca.key_type",
                    "must be \"p256\", \"p384\", \"rsa2048\", \"rsa3072\" or \"rsa4096\"",
                ))
            }
        };
        let ranges = |key, list: Vec<String>| {
            list.iter()
                .map(|r| {
                    crate::ca::parse_range(r).ok_or(invalid(key, "must be ADDRESS/PREFIX ranges"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let name_constraints = crate::ca::NameConstraints {
            permitted_ip: ranges("ca.permitted_ip_ranges", self.ca.permitted_ip_ranges)?,
            excluded_ip: ranges("ca.excluded_ip_ranges", self.ca.excluded_ip_ranges)?,
            permitted_dns: self.ca.permitted_dns_domains,
            excluded_dns: self.ca.excluded_dns_domains,
        };
        // The listeners' own certificate comes from the intermediate too.
        let (mut own_dns, mut own_ips) =
            (vec!["localhost".to_owned()], vec![std::net::IpAddr::from([127, 0, 0, 1])]);
        for h in &self.tls.hostnames {
            match h.parse::<std::net::IpAddr>() {
                Ok(ip) => own_ips.push(ip),
                Err(_) => own_dns.push(h.clone()),
            }
        }
        if name_constraints.check(&own_dns, &own_ips).is_err() {
            return Err(invalid(
                "ca.permitted_dns_domains",
                "name constraints must permit the server's own names (localhost, 127.0.0.1 \
                 and tls.hostnames): its certificate comes from the same intermediate",
            ));
        }
        if kmip.max_connections == 0 {
            return Err(invalid("kmip.max_connections", "must be at least 1"));
        }
        Ok(Settings {
            kmip_listen: o
                .kmip_listen
                .or(self.kmip.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5696))),
            http_listen: o
                .http_listen
                .or(self.http.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443))),
            ops_listen: self.http.ops_listen,
            kmip,
            hostnames: self.tls.hostnames,
            hsm: HsmConfig {
                module,
                token_label: self.hsm.token_label.unwrap_or_else(|| "strongroom".to_owned()),
                pin,
                managed_softhsm,
                max_sessions: self.hsm.max_sessions.unwrap_or(16),
            },
            store,
            data_dir,
            admins: self.access.admins,
            tde_mount,
            acme,
            ca: CaSettings {
                key_type,
                http_listen: self.ca.http_listen,
                url: ca_url,
                name_constraints,
            },
        })
    }
}

fn acme_settings(raw: RawAcme) -> Result<crate::acme::AcmeSettings, ConfigError> {
    let defaults = crate::acme::AcmeSettings::default();
    let dns_resolver = match raw.dns_resolver.as_deref() {
        None | Some("") | Some("system") => None,
        Some(s) => Some(
            s.parse::<SocketAddr>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| ConfigError::Invalid {
                    key: "acme.dns_resolver",
                    reason: "must be IP:PORT, an IP address (port 53) or \"system\"",
                })?,
        ),
    };
    let validity = |text: Option<String>, key| match text {
        None => Ok(defaults.validity),
        Some(text) => crate::creds::pki::parse_ttl(&serde_json::Value::String(text))
            .ok()
            .filter(|&v| (300..=398 * 86_400).contains(&v))
            .ok_or(ConfigError::Invalid {
                key,
                reason: "must be a duration like \"24h\", between 5m and 398 days",
            }),
    };
    let rules = |rules: &[String], key| {
        rules
            .iter()
            .map(|r| crate::acme::Preauthorized::parse(r))
            .collect::<Option<Vec<_>>>()
            .ok_or(ConfigError::Invalid {
                key,
                reason: "each rule is a DNS name, *.SUFFIX, an IP address or an IP/BITS network",
            })
    };
    let default_validity = validity(raw.certificate_validity, "acme.certificate_validity")?;
    let mut profiles = Vec::new();
    for (name, p) in raw.profiles {
        let profile = crate::acme::Profile {
            description: p.description.unwrap_or_default(),
            validity: match p.validity {
                None => default_validity,
                text => validity(text, "acme.profiles.*.validity")?,
            },
            server_auth: p.server_auth.unwrap_or(true),
            client_auth: p.client_auth.unwrap_or(true),
            identifiers: rules(&p.identifiers, "acme.profiles.*.identifiers")?,
            excluded_identifiers: rules(
                &p.excluded_identifiers,
                "acme.profiles.*.excluded_identifiers",
            )?,
            revocation_pointers: p.revocation_pointers.unwrap_or(true),
            key_types: p.key_types,
            store: p.store.unwrap_or(true),
            name,
        };
        let known = |t: &String| {
            ["p256", "p384", "p521", "ed25519"].contains(&t.as_str())
                || t.strip_prefix("rsa")
                    .and_then(|b| b.parse::<u32>().ok())
                    .is_some_and(|b| b >= 2048)
        };
        if !profile.key_types.iter().all(known) {
            return Err(ConfigError::Invalid {
                key: "acme.profiles.*.key_types",
                reason: "key types are p256, p384, p521, ed25519 or rsaBITS (2048 or more)",
            });
        }
        if !(profile.server_auth || profile.client_auth) {
            return Err(ConfigError::Invalid {
                key: "acme.profiles.*",
                reason: "a profile allows serverAuth, clientAuth or both",
            });
        }
        profiles.push(profile);
    }
    if profiles.is_empty() {
        profiles.push(crate::acme::Profile::builtin(default_validity));
    }
    let default_profile = raw.default_profile.unwrap_or_else(|| profiles[0].name.clone());
    if !profiles.iter().any(|p| p.name == default_profile) {
        return Err(ConfigError::Invalid {
            key: "acme.default_profile",
            reason: "must name one of [acme.profiles.*]",
        });
    }
    Ok(crate::acme::AcmeSettings {
        http01_port: raw.http01_port.unwrap_or(defaults.http01_port),
        tls_alpn01_port: raw.tls_alpn01_port.unwrap_or(defaults.tls_alpn01_port),
        dns_resolver,
        validity: default_validity,
        order_retention: match raw.order_retention {
            None => defaults.order_retention,
            Some(text) => crate::creds::pki::parse_ttl(&serde_json::Value::String(text))
                .ok()
                .filter(|&v| v >= 86_400)
                .ok_or(ConfigError::Invalid {
                    key: "acme.order_retention",
                    reason: "must be a duration like \"30d\", of a day or more",
                })?,
        },
        max_open_orders: match raw.max_open_orders {
            None => defaults.max_open_orders,
            Some(0) => {
                return Err(ConfigError::Invalid {
                    key: "acme.max_open_orders",
                    reason: "must be 1 or more",
                })
            }
            Some(n) => i64::from(n),
        },
        eab_required: raw.external_account_required.unwrap_or(false),
        preauthorized: rules(&raw.preauthorized, "acme.preauthorized")?,
        profiles,
        default_profile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_config_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let raw = RawConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
                raw.into_settings(Overrides::default()).unwrap_or_else(|e| panic!("{path:?}: {e}"));
                n += 1;
            }
        }
        assert!(n >= 1, "no example configs in {dir:?}");
    }

    #[test]
    fn defaults_and_overrides() {
        let s = RawConfig::default().into_settings(Overrides::default()).unwrap();
        assert_eq!(s.kmip_listen.port(), 5696);
        assert_eq!(s.http_listen.port(), 8443);
        assert!(s.hsm.managed_softhsm);
        let o = Overrides { data_dir: Some("/x".into()), ..Overrides::default() };
        let s = RawConfig::default().into_settings(o).unwrap();
        assert_eq!(s.store, Location::Sqlite(PathBuf::from("/x/strongroom.db")));
        let o = Overrides { store_url: Some("postgres://u@h/db".into()), ..Overrides::default() };
        let s = RawConfig::default().into_settings(o).unwrap();
        assert_eq!(s.store, Location::Postgres("postgres://u@h/db".into()));
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(toml::from_str::<RawConfig>("[kmip]\nlisten_port = 1").is_err());
        let raw: RawConfig = toml::from_str("[hsm]\nmodule = \"/opt/hsm.so\"").unwrap();
        assert!(raw.into_settings(Overrides::default()).is_err());
        let raw: RawConfig = toml::from_str("[store]\nurl = \"mysql://x\"").unwrap();
        assert!(raw.into_settings(Overrides::default()).is_err());
        for mount in ["sys", "a/b", ""] {
            let raw: RawConfig = toml::from_str(&format!("[tde]\nmount = {mount:?}")).unwrap();
            assert!(raw.into_settings(Overrides::default()).is_err(), "{mount}");
        }
        for acme in [
            "default_profile = \"nosuch\"",
            "[acme.profiles.p]\nserver_auth = false\nclient_auth = false",
            "[acme.profiles.p]\nvalidity = \"1s\"",
            "[acme.profiles.p]\nidentifiers = [\"not a name\"]",
        ] {
            let raw: RawConfig = toml::from_str(&format!("[acme]\n{acme}")).unwrap();
            assert!(raw.into_settings(Overrides::default()).is_err(), "{acme}");
        }
        for ca in [
            "key_type = \"rsa\"",
            "url = \"ftp://x\"",
            "permitted_ip_ranges = [\"10.0.0.0/40\"]",
            // The server's own certificate (localhost, 127.0.0.1) would be outside.
            "permitted_dns_domains = [\"svc.internal\"]",
            "excluded_ip_ranges = [\"127.0.0.0/8\"]",
        ] {
            let raw: RawConfig = toml::from_str(&format!("[ca]\n{ca}")).unwrap();
            assert!(raw.into_settings(Overrides::default()).is_err(), "{ca}");
        }
    }

    #[test]
    fn acme_profiles() {
        let s = RawConfig::default().into_settings(Overrides::default()).unwrap();
        let names: Vec<&str> = s.acme.profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!((names, s.acme.default_profile.as_str()), (vec!["default"], "default"));
        let raw: RawConfig = toml::from_str(
            "[acme]\ncertificate_validity = \"2h\"\n[acme.profiles.b]\nclient_auth = false\n\
             [acme.profiles.a]\nvalidity = \"1h\"",
        )
        .unwrap();
        let acme = raw.into_settings(Overrides::default()).unwrap().acme;
        assert_eq!(acme.default_profile, "a", "the first by name");
        let b = acme.profile(Some("b")).unwrap();
        assert_eq!((b.validity, b.server_auth, b.client_auth), (7200, true, false));
        assert_eq!(acme.profile(None).unwrap().validity, 3600);
        assert!(acme.profile(Some("c")).is_none());
    }
}
