use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tenant_service::domain::{Id, TenantId, Timestamp};
use tenant_service::{store, App, AuditCommand, Cli, Command, RosterCommand, Settings};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A client of a running service: no settings, store or log of its own.
    if let Some(Command::Roster {
        action:
            RosterCommand::Import {
                url,
                district,
                user,
                token,
                dry_run,
                json,
                path,
            },
    }) = cli.command
    {
        let args = tenant_service::client::ImportArgs {
            url,
            district,
            user,
            token,
            dry_run,
            json,
            path,
        };
        return roster_import(&args);
    }
    let settings = match Settings::load(&cli) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    match cli.command {
        Some(Command::Audit {
            action: AuditCommand::Verify { tenant },
        }) => return audit_verify(&settings, tenant),
        Some(Command::Audit {
            action: AuditCommand::Export { before, out },
        }) => return audit_export(&settings, &before, &out),
        Some(Command::Roster { .. }) | None => {}
    }
    // `RUST_LOG` wins over `log_level`; either must be a filter this
    // service takes (a typo is an error, not a silent start with no log).
    let wanted = std::env::var("RUST_LOG").ok().filter(|f| !f.is_empty());
    let wanted = wanted.unwrap_or_else(|| settings.log_level.clone());
    if let Err(e) = tenant_service::config::check_log_filter(&wanted) {
        return fail(&e);
    }
    let filter = match EnvFilter::try_new(&wanted) {
        Ok(f) => f,
        Err(e) => return fail(&format!("log filter {wanted:?} is invalid: {e}")),
    };
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if settings.log_format == "json" {
        // One object per line; a request's span (its id, caller, error_code)
        // is the `span` field of each of its lines.
        logs.json().with_current_span(true).with_span_list(false).init();
    } else {
        logs.with_ansi(std::io::stdout().is_terminal()).init();
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    runtime.block_on(async {
        let app = match App::open(&settings) {
            Ok(app) => app,
            Err(e) => return fail(&e),
        };
        let listener = match TcpListener::bind(settings.listen.as_str()).await {
            Ok(l) => l,
            Err(e) => return fail(&format!("cannot listen on {}: {e}", settings.listen)),
        };
        match app.serve(listener, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        }
    })
}

/// `tenant-service audit verify`: one JSON report per tenant on stdout.
fn audit_verify(settings: &Settings, tenant: Option<u64>) -> ExitCode {
    let tenant = match tenant.map(|t| TenantId::from_u64(t).map_err(|_| "--tenant must be a positive integer")) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => return fail(&e),
    };
    let reports = match store::verify_dir(&settings.data_dir, tenant) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let mut intact = true;
    for report in &reports {
        intact &= report.intact;
        match serde_json::to_string(report) {
            Ok(line) => println!("{line}"),
            Err(e) => return fail(&e),
        }
    }
    if intact {
        ExitCode::SUCCESS
    } else {
        // Not 2: that is clap's usage error (e.g. `--tenant abc`).
        ExitCode::from(3)
    }
}

/// `tenant-service audit export`: prints how many entries were written.
fn audit_export(settings: &Settings, before: &str, out: &std::path::Path) -> ExitCode {
    // A bare date means its UTC midnight.
    let before = if before.len() == 10 {
        format!("{before}T00:00:00Z")
    } else {
        before.to_owned()
    };
    let before = match Timestamp::parse_rfc3339("--before", &before) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    match store::export_dir(&settings.data_dir, before, out) {
        Ok(n) => {
            println!(
                "exported {n} audit entries created before {} to {}",
                before.rfc3339(),
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// `tenant-service roster import`: the report as a table on stdout; a
/// refusal's problems on stderr, then one line saying why, exit 1.
fn roster_import(args: &tenant_service::client::ImportArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    match runtime.block_on(tenant_service::client::roster_import(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// One clear line on stderr and a non-zero exit.
fn fail(err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("tenant-service: {err}");
    ExitCode::FAILURE
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received");
}
