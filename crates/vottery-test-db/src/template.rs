//! Template databases: a migration set applied once per test process, then copied per test.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::EmbeddedMigrations;
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;
use vottery_server::db::{
    DatabaseSettings, create_database, drop_database, run_migrations, run_on_server,
};

use super::server_settings;

/// What every template database's name starts with.
const PREFIX: &str = "tpl_";

/// Migration sets applied, in order, to a template database built once per test process.
///
/// Declare one as a `static` per kind of test database, each set given by a function that
/// returns it: `static BOTH: Template = Template::new("usr", &[|| SECURITY, || USERS]);`
pub struct Template {
    label: &'static str,
    migrations: &'static [fn() -> EmbeddedMigrations],
    built: OnceCell<String>,
}

impl Template {
    pub const fn new(
        label: &'static str,
        migrations: &'static [fn() -> EmbeddedMigrations],
    ) -> Self {
        Self {
            label,
            migrations,
            built: OnceCell::const_new(),
        }
    }

    /// The template database's name, building it on first use.
    pub(super) async fn database(&self) -> &str {
        self.built.get_or_init(|| self.build()).await
    }

    async fn build(&self) -> String {
        let server = server_settings();
        drop_abandoned(&server).await;
        let name = format!("{PREFIX}{}_{}", self.label, std::process::id());
        drop_database(&server, &name)
            .await
            .unwrap_or_else(|error| panic!("cannot clear template {name}: {error}"));
        create_database(&server, &name)
            .await
            .unwrap_or_else(|error| panic!("cannot create template {name}: {error}"));
        self.migrate(&name).await;
        name
    }

    /// Applies the template's migration sets to database `name`.
    pub(super) async fn migrate(&self, name: &str) {
        let url = server_settings().with_database(name);
        for migrations in self.migrations {
            run_migrations(&url, migrations())
                .await
                .unwrap_or_else(|error| panic!("cannot migrate {name}: {error}"));
        }
    }
}

/// `CREATE DATABASE name TEMPLATE source`.
pub(super) async fn clone_database(
    server: &DatabaseSettings,
    source: &str,
    name: &str,
) -> Result<(), diesel::ConnectionError> {
    let statement = format!("CREATE DATABASE \"{name}\" TEMPLATE \"{source}\"");
    run_on_server(server, &statement).await
}

#[derive(diesel::QueryableByName)]
struct Named {
    #[diesel(sql_type = diesel::sql_types::Text)]
    datname: String,
}

/// Drops the templates whose building process has ended (templates live on the server across
/// runs; their process id says whose they are).
async fn drop_abandoned(server: &DatabaseSettings) {
    let Ok(mut conn) = AsyncPgConnection::establish(server.url.expose_secret()).await else {
        return;
    };
    let Ok(templates) = diesel::sql_query(format!(
        "SELECT datname::text AS datname FROM pg_database WHERE datname LIKE '{PREFIX}%'"
    ))
    .load::<Named>(&mut conn)
    .await
    else {
        return;
    };
    for template in templates {
        let owner = template
            .datname
            .rsplit('_')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok());
        let alive = owner.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = drop_database(server, &template.datname).await;
        }
    }
}
