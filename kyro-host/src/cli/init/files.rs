//! The files `kyro init` writes: the store configuration, `kyro.toml`, and owner-only token
//! files, and the commands to try next.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use super::outcome::WrittenFiles;
use super::{PgvectorInitArgs, column_roles};

/// The store's configuration as TOML lines, written both into `store.toml` and under
/// `[stores.config]` in `kyro.toml`. The DSN is named by its variable, never given.
pub(super) struct StoreConfigText(String);

impl StoreConfigText {
    pub(super) fn new(args: &PgvectorInitArgs, dimension: u32) -> Self {
        let columns = column_roles(args)
            .map(|(role, column)| format!("{role} = {}", toml_string(column)))
            .join(", ");
        let filterable_keys =
            args.filterable_keys.iter().map(|key| toml_string(key)).collect::<Vec<_>>().join(", ");
        Self(format!(
            "dsn = {{ env = {} }}  # read when kyro starts; the DSN is in no file\n\
             table = {}\n\
             dimension = {dimension}\n\
             distance = {}\n\
             ownership_mode = {}\n\
             filterable_keys = [{filterable_keys}]\n\
             columns = {{ {columns} }}\n",
            toml_string(&args.dsn_env),
            toml_string(&args.table),
            toml_string(&args.distance),
            toml_string(&args.ownership),
        ))
    }
}

/// `text` as a TOML basic string: JSON's escapes are a subset TOML reads the same way.
pub(super) fn toml_string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// Where `kyro init` writes.
pub(super) struct FilePaths {
    dir: PathBuf,
    config: PathBuf,
    store_config: PathBuf,
    data_token: PathBuf,
    admin_token: PathBuf,
    retrieve: PathBuf,
}

impl FilePaths {
    pub(super) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            config: dir.join("kyro.toml"),
            store_config: dir.join("store.toml"),
            data_token: dir.join("data.token"),
            admin_token: dir.join("admin.token"),
            retrieve: dir.join("retrieve.json"),
        }
    }

    pub(super) fn all(&self) -> [&Path; 5] {
        [&self.config, &self.store_config, &self.data_token, &self.admin_token, &self.retrieve]
    }

    /// Refuses to overwrite a previous run's files unless `force`.
    pub(super) fn check_free(&self, force: bool) -> anyhow::Result<()> {
        if force {
            return Ok(());
        }
        if let Some(existing) = self.all().into_iter().find(|path| path.exists()) {
            anyhow::bail!(
                "{} already exists; pass --force to overwrite the files of a previous kyro init, or --dir to write elsewhere",
                existing.display()
            );
        }
        Ok(())
    }

    pub(super) fn write(
        &self,
        args: &PgvectorInitArgs,
        store_config: &StoreConfigText,
        plugin: &Path,
        dimension: u32,
    ) -> anyhow::Result<WrittenFiles> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("failed to create {}", self.dir.display()))?;
        let plugin = plugin.canonicalize().unwrap_or_else(|_| plugin.to_path_buf());
        write_owner_only(&self.data_token, &crate::cli::quickstart::token())?;
        write_owner_only(&self.admin_token, &crate::cli::quickstart::token())?;
        write_file(
            &self.store_config,
            &format!(
                "# The pgvector store, written by `kyro init pgvector` after the store was certified.\n\
                 # Certify again: kyro certify --plugin {} --store-config store.toml\n\
                 # Keys: connectors/pgvector/src/config.rs.\n\n{}",
                plugin.display(),
                store_config.0
            ),
        )?;
        write_file(
            &self.config,
            &format!(
                "# Written by `kyro init pgvector`; keys are documented in kyro-host/src/config.rs.\n\
                 # Serve: kyro serve --config kyro.toml (with {} set to the PostgreSQL URL).\n\n\
                 listen = {}\nmode = \"production\"\ndefault_freshness = \"strict\"\nstate = \"sqlite://kyro-state.db\"\n\n\
                 [tokens]\n\
                 data = [{{ token = {{ file = \"data.token\" }} }}]\n\
                 observability = [{{ token = {{ file = \"admin.token\" }} }}]\n\
                 admin = [{{ token = {{ file = \"admin.token\" }} }}]\n\n\
                 [[stores]]\nid = \"pgvector\"\nplugin = {}\nownership_mode = {}\nnamespaces = [\"*\"]\n\n\
                 [stores.config]\n{}",
                args.dsn_env,
                toml_string(&args.listen),
                toml_string(&plugin.display().to_string()),
                toml_string(&args.ownership),
                store_config.0
            ),
        )?;
        // The written configuration must load as `kyro serve` will load it.
        crate::config::ValidatedConfig::load(&self.config).with_context(|| {
            format!("kyro init wrote {} but it does not load", self.config.display())
        })?;
        let retrieve = json!({
            "query_embedding": sample_embedding(dimension),
            "scope": { "tenant_id": args.sample_tenant, "namespace": args.sample_namespace },
            "top_k": 5,
            "freshness_mode": "strict",
        });
        write_file(&self.retrieve, &(retrieve.to_string() + "\n"))?;
        Ok(WrittenFiles {
            config: self.config.clone(),
            store_config: self.store_config.clone(),
            data_token: self.data_token.clone(),
            admin_token: self.admin_token.clone(),
            retrieve: self.retrieve.clone(),
        })
    }
}

/// A unit vector along the first axis: any table's embeddings rank against it.
pub(super) fn sample_embedding(dimension: u32) -> Vec<f32> {
    let mut embedding = vec![0.0; dimension as usize];
    if let Some(first) = embedding.first_mut() {
        *first = 1.0;
    }
    embedding
}

pub(super) fn write_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("failed to write {}", path.display()))
}

/// Writes a secret readable and writable by its owner only (0600 on Unix), also when the file
/// existed with wider permissions.
pub(crate) fn write_owner_only(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("failed to restrict {}", path.display()))?;
        }
    }
    let mut file =
        options.open(path).with_context(|| format!("failed to write {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .with_context(|| format!("failed to write {}", path.display()))
}

/// The `kyro serve`, `kyro certify` and `curl` lines to try.
pub(super) fn next_steps(args: &PgvectorInitArgs, files: &WrittenFiles) -> Vec<String> {
    let kyro = std::env::current_exe()
        .map(|exe| shell_quote(&exe.display().to_string()))
        .unwrap_or_else(|_| "kyro".to_owned());
    let mut lines = Vec::new();
    if args.dsn.is_some() {
        lines.push(format!("export {}='<the PostgreSQL URL you passed with --dsn>'", args.dsn_env));
    }
    lines.push(format!(
        "{kyro} serve --config {}",
        shell_quote(&files.config.display().to_string())
    ));
    lines.push(format!(
        "curl -s http://{}/v1/context/retrieve -H \"Authorization: Bearer $(cat {})\" -H 'Content-Type: application/json' -d @{}",
        args.listen,
        shell_quote(&files.data_token.display().to_string()),
        shell_quote(&files.retrieve.display().to_string())
    ));
    lines
}

/// `text` quoted for a POSIX shell when it needs it.
pub(super) fn shell_quote(text: &str) -> String {
    if text
        .chars()
        .all(|character| character.is_ascii_alphanumeric() || "/._-+:@".contains(character))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}
