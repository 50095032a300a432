//! HTTP and ports: the one HTTP client for downloads, free ports, and the GETs slipway makes to
//! apps and to its router on 127.0.0.1.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The client for downloads (buildpacks, runtimes, slugs): long timeouts, slipway's agent.
pub fn http_client() -> Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(1800))
        .user_agent(concat!("slipway/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client")
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn local_url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}/{}", path.trim_start_matches('/'))
}

/// GET `http://127.0.0.1:PORT/PATH`, blocking; returns the status and body.
pub fn get(port: u16, path: &str, timeout: Duration) -> Result<(u16, String)> {
    let client = reqwest::blocking::Client::builder().timeout(timeout).no_proxy().build()?;
    let response = client.get(local_url(port, path)).send()?;
    let status = response.status().as_u16();
    Ok((status, response.text()?))
}

/// GET `http://127.0.0.1:PORT/PATH` on the async runtime; returns the status and body.
pub async fn get_async(port: u16, path: &str, timeout: Duration) -> Result<(u16, String)> {
    let client = reqwest::Client::builder().timeout(timeout).no_proxy().build()?;
    let response = client.get(local_url(port, path)).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// One HTTP/1.0 `GET /` for `host` at `address`; the whole answer (head and body), or None
/// when nothing answered in time (the router's generation probe: a short, closed answer).
pub async fn raw_get(address: &str, host: &str, timeout: Duration) -> Option<String> {
    let answer = ask(address, host, None, timeout).await?;
    Some(String::from_utf8_lossy(&answer).into_owned())
}

/// Sends `GET /` for `host` to `address`; reads the answer to its end, or only its first
/// `head` bytes. None when nothing answered (that much) within `timeout`.
async fn ask(address: &str, host: &str, head: Option<usize>, timeout: Duration) -> Option<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(address).await.ok()?;
        let request = format!("GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: slipway\r\n\r\n");
        s.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        match head {
            Some(n) => {
                answer.resize(n, 0);
                s.read_exact(&mut answer).await.ok()?;
            }
            None => {
                s.read_to_end(&mut answer).await.ok()?;
            }
        }
        Some(answer)
    };
    tokio::time::timeout(timeout, exchange).await.ok().flatten()
}

/// Whether something at `address` answers a GET with an HTTP status line: only its first bytes
/// are read, so a page that streams or holds the connection open counts as an answer.
async fn answers_http(address: &str, timeout: Duration) -> bool {
    ask(address, "localhost", Some(5), timeout).await.is_some_and(|head| head == b"HTTP/")
}

/// Waits until 127.0.0.1:`port` answers HTTP (any status) within `limit`; returns how long it
/// took. A bare TCP connect is not enough: Docker's userland proxy accepts connections on a
/// published port before the app inside listens.
pub async fn wait_for_http(port: u16, limit: Duration) -> Result<Duration> {
    let started = Instant::now();
    let address = format!("127.0.0.1:{port}");
    loop {
        if answers_http(&address, Duration::from_secs(2)).await {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            bail!("the web process did not answer HTTP on its port within {}s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
