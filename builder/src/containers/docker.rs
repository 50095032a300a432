//! The Docker engine, through its API (bollard): the few operations slipway needs, each with
//! errors that say what to do. Nothing here shells out to the docker CLI.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{anyhow, bail, Context, Result};
use bollard::models::{ContainerCreateBody, PortBinding};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    DownloadFromContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder, TagImageOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};

/// Labels every object slipway creates carries, so cleanup can find them.
pub const LABEL_MANAGED: &str = "io.slipway.managed";
pub const LABEL_ROLE: &str = "io.slipway.role";
pub const LABEL_APP: &str = "io.slipway.app";

pub struct Engine {
    pub api: Docker,
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

impl Engine {
    /// Connects (DOCKER_HOST or the local socket) and checks the engine answers.
    pub async fn connect() -> Result<Engine> {
        let where_ = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let hint = "start it (`dockerd`, or `make deps`) or point DOCKER_HOST at one";
        let api = Docker::connect_with_defaults()
            .map_err(|e| anyhow!("cannot reach the Docker engine at {where_}: {e}; {hint}"))?;
        let api = tokio::time::timeout(std::time::Duration::from_secs(10), api.negotiate_version())
            .await
            .map_err(|_| anyhow!("the Docker engine at {where_} did not answer within 10s; {hint}"))?
            .map_err(|e| {
                anyhow!("cannot reach the Docker engine at {where_}: {}; {hint}", crate::output::error_chain(&e))
            })?;
        api.ping().await.map_err(|e| {
            anyhow!("cannot reach the Docker engine at {where_}: {}; {hint}", crate::output::error_chain(&e))
        })?;
        Ok(Engine { api })
    }

    pub async fn image_exists(&self, name: &str) -> Result<bool> {
        match self.api.inspect_image(name).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e).context(format!("cannot inspect image {name}")),
        }
    }

    pub async fn image_size(&self, name: &str) -> Result<u64> {
        let info = self.api.inspect_image(name).await.with_context(|| format!("cannot inspect image {name}"))?;
        Ok(info.size.unwrap_or(0).max(0) as u64)
    }

    pub async fn image_labels(&self, name: &str) -> Result<HashMap<String, String>> {
        let info = self.api.inspect_image(name).await.with_context(|| format!("image {name} does not exist"))?;
        Ok(info.config.and_then(|c| c.labels).unwrap_or_default())
    }

    /// The ports an image EXPOSEs, as numbers.
    pub async fn image_exposed_ports(&self, name: &str) -> Result<Vec<u16>> {
        let info = self.api.inspect_image(name).await.with_context(|| format!("image {name} does not exist"))?;
        let ports = info.config.and_then(|c| c.exposed_ports).unwrap_or_default();
        let mut out: Vec<u16> = ports.iter().filter_map(|p| p.split('/').next()?.parse().ok()).collect();
        out.sort();
        Ok(out)
    }

    /// An image's entrypoint and command.
    pub async fn image_command(&self, name: &str) -> Result<(Vec<String>, Vec<String>)> {
        let info = self.api.inspect_image(name).await.with_context(|| format!("image {name} does not exist"))?;
        let config = info.config.unwrap_or_default();
        Ok((config.entrypoint.unwrap_or_default(), config.cmd.unwrap_or_default()))
    }

    /// The id of an image, when it exists.
    pub async fn image_id(&self, name: &str) -> Result<Option<String>> {
        match self.api.inspect_image(name).await {
            Ok(info) => Ok(info.id),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e).context(format!("cannot inspect image {name}")),
        }
    }

    /// Images carrying `label` (`key` or `key=value`): (id, tags, labels).
    pub async fn images_with_label(&self, label: &str) -> Result<Vec<(String, Vec<String>, HashMap<String, String>)>> {
        let filters = HashMap::from([("label", vec![label])]);
        let opts = bollard::query_parameters::ListImagesOptionsBuilder::default().filters(&filters).build();
        let images = self.api.list_images(Some(opts)).await.context("cannot list images")?;
        Ok(images.into_iter().map(|i| (i.id, i.repo_tags, i.labels)).collect())
    }

    /// Images whose name matches `reference` (`repo:tag-*`, as `docker images --filter
    /// reference=`): (id, tags).
    pub async fn images_named(&self, reference: &str) -> Result<Vec<(String, Vec<String>)>> {
        let filters = HashMap::from([("reference", vec![reference])]);
        let opts = bollard::query_parameters::ListImagesOptionsBuilder::default().filters(&filters).build();
        let images = self.api.list_images(Some(opts)).await.context("cannot list images")?;
        Ok(images.into_iter().map(|i| (i.id, i.repo_tags)).collect())
    }

    /// Removes an image (all its tags); one still used by a container, or the parent of another
    /// image, stays. Returns whether it was removed.
    pub async fn remove_image_quietly(&self, id: &str) -> bool {
        let opts = bollard::query_parameters::RemoveImageOptionsBuilder::default().force(true).noprune(false).build();
        if self.image_in_use(id).await {
            return false;
        }
        self.api.remove_image(id, Some(opts), None).await.is_ok()
    }

    /// Removes slipway's untagged images (releases whose tag moved on), only `app`'s when given:
    /// another app's Dockerfile build in progress has untagged layers too; returns how many.
    pub async fn remove_dangling(&self, app: Option<&str>) -> Result<usize> {
        let mut labels = vec![LABEL_MANAGED.to_string()];
        labels.extend(app.map(|a| format!("{LABEL_APP}={a}")));
        let filters = HashMap::from([("dangling", vec!["true".to_string()]), ("label", labels)]);
        let opts = bollard::query_parameters::ListImagesOptionsBuilder::default().filters(&filters).build();
        let images = self.api.list_images(Some(opts)).await.context("cannot list images")?;
        let mut removed = 0;
        for image in images {
            if self.remove_image_quietly(&image.id).await {
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn image_in_use(&self, id: &str) -> bool {
        let filters = HashMap::from([("ancestor", vec![id])]);
        let opts =
            bollard::query_parameters::ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        self.api.list_containers(Some(opts)).await.map(|c| !c.is_empty()).unwrap_or(true)
    }

    /// After `tag` was rebuilt: removes the image it pointed to before, unless still in use.
    pub async fn replace_image(&self, previous: Option<String>, tag: &str) {
        let Some(previous) = previous else { return };
        if self.image_id(tag).await.ok().flatten().as_deref() != Some(previous.as_str()) {
            self.remove_image_quietly(&previous).await;
        }
    }

    pub async fn tag(&self, image: &str, repo: &str, tag: &str) -> Result<()> {
        let opts = TagImageOptionsBuilder::default().repo(repo).tag(tag).build();
        self.api.tag_image(image, Some(opts)).await.with_context(|| format!("cannot tag {image} as {repo}:{tag}"))
    }

    /// `docker import`: a root file system tar becomes an image.
    pub async fn import(
        &self,
        tar: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
        repo: &str,
        tag: &str,
    ) -> Result<()> {
        let opts = CreateImageOptionsBuilder::default().from_src("-").repo(repo).tag(tag).build();
        let mut progress = self.api.create_image(Some(opts), Some(bollard::body_try_stream(tar)), None);
        while let Some(item) = progress.next().await {
            let info = item.context("docker import failed")?;
            if let Some(detail) = info.error_detail {
                bail!("docker import failed: {}", detail.message.unwrap_or_default());
            }
        }
        Ok(())
    }

    /// Builds an image from a context tar, passing each log line to `on_line`. Returns the
    /// engine's own error message when the Dockerfile fails.
    pub async fn build(&self, context: TarStream, spec: &ImageBuild<'_>, mut on_line: impl FnMut(&str)) -> Result<()> {
        let mut opts = BuildImageOptionsBuilder::default()
            .dockerfile(spec.dockerfile)
            .t(spec.tag)
            .rm(true)
            .forcerm(true)
            .buildargs(&spec.args)
            .labels(&spec.labels);
        if let Some(t) = spec.target {
            opts = opts.target(t);
        }
        let mut stream = self.api.build_image(opts.build(), None, Some(bollard::body_try_stream(context.stream)));
        let mut partial = String::new();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(i) => i,
                Err(bollard::errors::Error::DockerStreamError { error }) => bail!("{}", error.trim()),
                Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => bail!("{}", message.trim()),
                Err(e) => return Err(anyhow!("the image build failed: {}", crate::output::error_chain(&e))),
            };
            if let Some(detail) = info.error_detail {
                bail!("{}", detail.message.unwrap_or_default().trim());
            }
            if let Some(text) = info.stream {
                partial.push_str(&text);
                while let Some(pos) = partial.find('\n') {
                    let line: String = partial.drain(..=pos).collect();
                    on_line(line.trim_end());
                }
            }
        }
        if !partial.trim().is_empty() {
            on_line(partial.trim_end());
        }
        context.writer.await.context("the build context's writer stopped")?
    }

    pub async fn create(&self, name: &str, body: ContainerCreateBody) -> Result<String> {
        let opts = CreateContainerOptionsBuilder::default().name(name).build();
        let created = self.api.create_container(Some(opts), body).await.map_err(|e| match &e {
            bollard::errors::Error::DockerResponseServerError { status_code: 404, message } => {
                anyhow!("cannot create container {name}: {message}")
            }
            _ => anyhow!("cannot create container {name}: {}", crate::output::error_chain(&e)),
        })?;
        Ok(created.id)
    }

    /// Extracts a tar, streamed as it is made, into `dir` inside the (created, not yet
    /// started) container. `keep_owners` keeps the archive's owners, as `docker cp -a` does.
    pub async fn upload(&self, container: &str, dir: &str, tar: TarStream, keep_owners: bool) -> Result<()> {
        let mut opts = UploadToContainerOptionsBuilder::default().path(dir);
        if keep_owners {
            opts = opts.copy_uidgid("1");
        }
        let body = bollard::body_try_stream(tar.stream);
        let sent = self.api.upload_to_container(container, Some(opts.build()), body).await;
        let written = tar.writer.await.context("the archive writer stopped")?;
        // The writer's own error (an unreadable file, say) says more than the broken upload it
        // caused; a writer that only saw the engine stop reading says less than the engine.
        match (sent, written) {
            (_, Err(e)) if !is_stopped_reading(&e) => Err(e),
            (Err(e), _) => Err(e).with_context(|| format!("cannot copy files into the container at {dir}")),
            (Ok(()), written) => written,
        }
    }

    /// `docker commit`: the container's file system and config become `repo:tag`.
    pub async fn commit(&self, container: &str, repo: &str, tag: &str) -> Result<()> {
        let opts = bollard::query_parameters::CommitContainerOptionsBuilder::default()
            .container(container)
            .repo(repo)
            .tag(tag)
            .comment("slipway release")
            .pause(false)
            .build();
        self.api
            .commit_container(opts, bollard::models::ContainerConfig::default())
            .await
            .with_context(|| format!("cannot commit {repo}:{tag}"))?;
        Ok(())
    }

    /// Copies one file out of a container into `dest`, streamed (never whole in memory);
    /// returns its size and SHA-256.
    pub async fn download_file(&self, container: &str, path: &str, dest: &std::path::Path) -> Result<(u64, String)> {
        let opts = DownloadFromContainerOptionsBuilder::default().path(path).build();
        let stream = self.api.download_from_container(container, Some(opts)).map_err(std::io::Error::other);
        let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
        let (path, dest) = (path.to_string(), dest.to_path_buf());
        tokio::task::spawn_blocking(move || -> Result<(u64, String)> {
            use sha2::Digest;
            let mut archive = tar::Archive::new(reader);
            let mut entry = archive
                .entries()?
                .next()
                .ok_or_else(|| anyhow!("the container has no {path}"))?
                .with_context(|| format!("cannot read {path} from the container"))?;
            let tmp = dest.with_extension("partial");
            let file = std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", dest.display()))?;
            let mut out = HashingWriter { inner: std::io::BufWriter::new(file), hash: sha2::Sha256::new() };
            let copied = std::io::copy(&mut entry, &mut out).and_then(|n| out.inner.flush().map(|()| n));
            let n = match copied {
                Ok(n) => n,
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e).with_context(|| format!("cannot copy {path} out of the container"));
                }
            };
            std::fs::rename(&tmp, &dest)?;
            Ok((n, out.hash.finalize().iter().map(|b| format!("{b:02x}")).collect()))
        })
        .await?
    }

    /// Reads one small file out of a container, when it is there.
    pub async fn read_small_file(&self, container: &str, path: &str) -> Option<Vec<u8>> {
        let opts = DownloadFromContainerOptionsBuilder::default().path(path).build();
        let mut stream = self.api.download_from_container(container, Some(opts));
        let mut tar_bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            tar_bytes.extend_from_slice(&chunk.ok()?);
            if tar_bytes.len() > 16 << 20 {
                return None;
            }
        }
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let mut entry = archive.entries().ok()?.next()?.ok()?;
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).ok()?;
        Some(data)
    }

    /// Starts a created container and passes its output through as it comes; returns the exit
    /// code and whether the kernel killed it for memory.
    pub async fn start_and_follow(
        &self,
        container: &str,
        mut on_output: impl FnMut(&[u8], bool),
    ) -> Result<(i64, bool)> {
        self.api.start_container(container, None).await.with_context(|| format!("cannot start {container}"))?;
        let opts = LogsOptionsBuilder::default().follow(true).stdout(true).stderr(true).build();
        let mut logs = self.api.logs(container, Some(opts));
        while let Some(chunk) = logs.next().await {
            match chunk {
                Ok(bollard::container::LogOutput::StdErr { message }) => on_output(&message, true),
                Ok(output) => on_output(&output.into_bytes(), false),
                Err(e) => return Err(anyhow!("lost the build log: {}", crate::output::error_chain(&e))),
            }
        }
        let mut wait = self.api.wait_container(container, None);
        let code = match wait.next().await {
            Some(Ok(r)) => r.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(anyhow!("cannot wait for {container}: {}", crate::output::error_chain(&e))),
            None => bail!("cannot wait for {container}"),
        };
        let state = self.api.inspect_container(container, None).await.ok().and_then(|c| c.state);
        let oom = state.and_then(|s| s.oom_killed).unwrap_or(false);
        Ok((code, oom))
    }

    /// The last `n` lines a container printed (stdout and stderr), for error messages.
    pub async fn log_tail(&self, container: &str, n: usize) -> String {
        let opts = LogsOptionsBuilder::default().stdout(true).stderr(true).tail(&n.to_string()).build();
        let mut logs = self.api.logs(container, Some(opts));
        let mut text = String::new();
        while let Some(Ok(chunk)) = logs.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        text
    }

    /// The 127.0.0.1 port `container_port` of a started container is published on; none once
    /// the container has stopped.
    pub async fn published_port(&self, container: &str, container_port: u16) -> Option<u16> {
        let info = self.api.inspect_container(container, None).await.ok()?;
        let bindings = info.network_settings?.ports?.get(&format!("{container_port}/tcp")).cloned().flatten()?;
        bindings.first()?.host_port.as_deref()?.parse().ok()
    }

    /// Removes a volume; returns whether it was removed.
    pub async fn remove_volume(&self, name: &str) -> bool {
        self.api.remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>).await.is_ok()
    }

    /// Removes a container and its anonymous volumes, whatever state it is in.
    pub async fn remove_container(&self, container: &str) {
        let opts = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        let _ = self.api.remove_container(container, Some(opts)).await;
    }
}

/// What [`Engine::build`] builds: the Dockerfile's path in the context, the tag, the stage, build
/// args and labels.
pub struct ImageBuild<'a> {
    pub dockerfile: &'a str,
    pub tag: &'a str,
    pub target: Option<&'a str>,
    pub args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
}

/// Host config publishing `container_port` on 127.0.0.1:`host_port` (0: any free port).
pub fn loopback_port(container_port: u16, host_port: u16) -> HashMap<String, Option<Vec<PortBinding>>> {
    let binding = PortBinding {
        host_ip: Some("127.0.0.1".into()),
        host_port: Some(if host_port == 0 { String::new() } else { host_port.to_string() }),
    };
    HashMap::from([(format!("{container_port}/tcp"), Some(vec![binding]))])
}

/// How big a container's log may grow: rotated at `max_size` bytes, `max_files` files kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    pub max_size: u64,
    pub max_files: u32,
}

impl Default for LogLimits {
    /// 10 MB x 3 files (builds, and apps unless `log-max-size`/`log-max-files` say otherwise).
    fn default() -> LogLimits {
        LogLimits { max_size: 10_000_000, max_files: 3 }
    }
}

/// The log settings of every container slipway starts: Docker's json-file driver, rotated, so
/// no container's log can fill the disk.
pub fn rotated_logs(limits: LogLimits) -> bollard::models::HostConfigLogConfig {
    bollard::models::HostConfigLogConfig {
        typ: Some("json-file".into()),
        config: Some(HashMap::from([
            ("max-size".into(), limits.max_size.to_string()),
            ("max-file".into(), limits.max_files.to_string()),
        ])),
    }
}

/// A tar archive streamed to the Docker engine while a blocking thread writes it.
pub struct TarStream {
    stream: futures_util::stream::BoxStream<'static, std::io::Result<Bytes>>,
    writer: tokio::task::JoinHandle<Result<()>>,
}

impl TarStream {
    /// Runs `write` on a blocking thread; what it appends to the builder is sent on in 256 KiB
    /// chunks as it comes.
    pub fn new(write: impl FnOnce(&mut tar::Builder<ChunkWriter>) -> Result<()> + Send + 'static) -> TarStream {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
        let writer = tokio::task::spawn_blocking(move || {
            let mut builder = tar::Builder::new(ChunkWriter { tx, buf: Vec::with_capacity(CHUNK) });
            builder.mode(tar::HeaderMode::Complete);
            write(&mut builder)?;
            let mut w = builder.into_inner()?;
            w.flush()?;
            Ok(())
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
        TarStream { stream: stream.boxed(), writer }
    }

    /// A tar already in memory (the stack images' small context).
    pub fn from_bytes(bytes: Vec<u8>) -> TarStream {
        let stream = futures_util::stream::once(async move { Ok(Bytes::from(bytes)) });
        TarStream { stream: stream.boxed(), writer: tokio::task::spawn(async { Ok(()) }) }
    }

    /// A file as it is (a slug: already a gzip tar the engine extracts), read in chunks.
    pub fn file(path: &std::path::Path) -> Result<TarStream> {
        let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
        let writer = tokio::task::spawn_blocking(move || {
            let mut w = ChunkWriter { tx, buf: Vec::with_capacity(CHUNK) };
            std::io::copy(&mut std::io::BufReader::new(file), &mut w)?;
            w.flush()?;
            Ok(())
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
        Ok(TarStream { stream: stream.boxed(), writer })
    }
}

const CHUNK: usize = 256 * 1024;

/// Sends what is written to it on a channel, in chunks (blocking when the receiver lags).
pub struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
            self.tx.blocking_send(Ok(chunk)).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the Docker engine stopped reading")
            })?;
        }
        Ok(())
    }
}

fn is_stopped_reading(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Hashes what passes through to `inner`.
struct HashingWriter<W> {
    inner: W,
    hash: sha2::Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(data)?;
        sha2::Digest::update(&mut self.hash, &data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A tar (in memory) of `files`: (path in archive, contents, mode).
pub fn tar_of(files: &[(&str, &[u8], u32)]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(0);
        h.set_cksum();
        builder.append_data(&mut h, path, *data)?;
    }
    Ok(builder.into_inner()?)
}
