//! The ACME side (RFC 8555, through instant-acme): an account per server, kept in the data dir;
//! an order for an app's hosts, each validated over HTTP-01 by the router, which answers the
//! challenge while the app keeps serving; then the certificate and its new key.
//!
//! The client trusts the system CA bundle, plus `SSL_CERT_FILE` and slipway's CA bundle setting
//! (`SLIPWAY_CA_BUNDLE`), so an ACME server with a private CA (a test server, a company's own)
//! can be used.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use sha2::Digest;

use crate::platform::router::challenges_path;
use crate::platform::runner::Runner;

/// The CA bundles the client reads: the system's, then the ones named by the environment.
fn ca_bundles() -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from("/etc/ssl/certs/ca-certificates.crt")];
    for var in ["SSL_CERT_FILE", "SLIPWAY_CA_BUNDLE"] {
        if let Some(path) = std::env::var_os(var) {
            paths.push(PathBuf::from(path));
        }
    }
    paths
}

fn http_client() -> Result<Box<dyn instant_acme::HttpClient>> {
    let mut roots = rustls::RootCertStore::empty();
    for path in ca_bundles().iter().filter(|p| p.is_file()) {
        let certs = CertificateDer::pem_file_iter(path).with_context(|| format!("cannot read {}", path.display()))?;
        for cert in certs.flatten() {
            let _ = roots.add(cert);
        }
    }
    if roots.is_empty() {
        bail!(
            "no CA certificates found (the system bundle, SSL_CERT_FILE, SLIPWAY_CA_BUNDLE): install ca-certificates"
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, instant_acme::BodyWrapper<bytes::Bytes>>(connector);
    Ok(Box::new(client))
}

/// The account for `server` and `email`, made on first use and kept (mode 0600) in `acme/`: an
/// app with an email of its own gets its own account, so notices reach whom they concern.
async fn account(data_dir: &Path, server: &str, email: Option<&str>) -> Result<Account> {
    let digest = sha2::Sha256::digest(format!("{server}\n{}", email.unwrap_or_default()).as_bytes());
    let name: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let path = data_dir.join("acme").join(format!("account-{name}.json"));
    if let Some(text) = crate::engine::fsutil::read_no_follow(&path, 64 * 1024)? {
        let credentials: AccountCredentials = serde_json::from_str(&text).context("the stored ACME account")?;
        return Ok(Account::builder_with_http(http_client()?).from_credentials(credentials).await?);
    }
    let contact = email.map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let new = NewAccount { contact: &contacts, terms_of_service_agreed: true, only_return_existing: false };
    let (account, credentials) = Account::builder_with_http(http_client()?)
        .create(&new, server.to_string(), None)
        .await
        .with_context(|| format!("cannot register with the ACME server {server}"))?;
    write_private(&path, serde_json::to_string(&credentials)?.as_bytes())?;
    Ok(account)
}

/// A file of the ACME state (`acme/`, mode 0700), private.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path.parent().context("no parent")?)?;
    crate::engine::fsutil::write_private(path, bytes)
}

/// Publishes (or, with none, withdraws) the app's HTTP-01 answers through the router.
async fn answer(r: &Runner, app: &str, answers: &[(String, String)]) -> Result<()> {
    let path = challenges_path(&r.state.data_dir, app);
    if answers.is_empty() {
        let _ = std::fs::remove_file(&path);
    } else {
        let lines: String = answers.iter().map(|(token, auth)| format!("{token} {auth}\n")).collect();
        write_private(&path, lines.as_bytes())?;
    }
    r.refresh_routes(app).await
}

/// A certificate for `hosts` from `server`: (PEM chain, PEM key). The router answers the
/// HTTP-01 challenges meanwhile; they are withdrawn however it ends.
pub async fn issue(
    r: &Runner,
    app: &str,
    hosts: &[String],
    server: &str,
    email: Option<&str>,
) -> Result<(String, String)> {
    let account = account(&r.state.data_dir, server, email).await?;
    let result = order(r, app, &account, hosts).await;
    let withdrawn = answer(r, app, &[]).await;
    let issued = result?;
    withdrawn?;
    Ok(issued)
}

async fn order(r: &Runner, app: &str, account: &Account, hosts: &[String]) -> Result<(String, String)> {
    let identifiers: Vec<Identifier> = hosts.iter().map(|h| Identifier::Dns(h.clone())).collect();
    let mut order =
        account.new_order(&NewOrder::new(&identifiers)).await.context("the ACME server refused the order")?;
    let mut answers = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            status => bail!("the ACME server says the authorization of {} is {status:?}", authorization.identifier()),
        }
        let mut challenge =
            authorization.challenge(ChallengeType::Http01).context("the ACME server offers no HTTP-01 challenge")?;
        answers.push((challenge.token.clone(), challenge.key_authorization().as_str().to_string()));
        answer(r, app, &answers).await?;
        challenge.set_ready().await?;
    }
    let patient = RetryPolicy::new().initial_delay(Duration::from_millis(500)).timeout(Duration::from_secs(120));
    let status = order.poll_ready(&patient).await?;
    if status != OrderStatus::Ready {
        bail!("the ACME server did not validate the hosts ({status:?}): {}", problems(&mut order).await);
    }
    let key = order.finalize().await?;
    let chain = order.poll_certificate(&patient).await?;
    Ok((chain, key))
}

/// What the server says went wrong with each host's challenge.
async fn problems(order: &mut instant_acme::Order) -> String {
    let mut said = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(authorization)) = authorizations.next().await {
        for challenge in &authorization.challenges {
            if let Some(problem) = &challenge.error {
                said.push(format!("{}: {}", authorization.identifier(), problem.detail.as_deref().unwrap_or("failed")));
            }
        }
    }
    if said.is_empty() {
        "no reason given".into()
    } else {
        said.join("; ")
    }
}
