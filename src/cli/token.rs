//! `lrlab token create|list|revoke`: manage API tokens straight in the database, e.g. the
//! first admin token of a deployment before its server starts.

use std::io::Write;

use anyhow::Context;
use chrono::Utc;

use crate::auth::{check_tenant, generate_token, hash_token, parse_duration, Role};
use crate::store::{self, NewToken};

/// `lrlab token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Database URL, as `lrlab serve --db` takes it.
    #[arg(
        long,
        global = true,
        env = "LRLAB_DATABASE_URL",
        default_value = "sqlite://lrlab.db"
    )]
    pub db: String,
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// What to do with tokens.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once, alone on the last line of standard output.
    Create {
        /// The tenant its jobs and sweeps belong to (`[a-z0-9_-]`, 1 to 63 characters).
        #[arg(long)]
        tenant: String,
        /// `admin` (everything, every tenant, tokens), `member` (its tenant's jobs and
        /// sweeps) or `viewer` (reads its tenant's).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// How long it is valid: `90m`, `12h`, `30d`; absent: until revoked.
        #[arg(long, value_parser = parse_duration)]
        expires: Option<std::time::Duration>,
    },
    /// List tokens (ids, tenants, roles and dates; never the tokens).
    List,
    /// Revoke a token by id; requests with it are refused (401) from now on.
    Revoke {
        /// The token's id, as `lrlab token list` shows it.
        id: i64,
    },
}

fn parse_role(word: &str) -> Result<Role, String> {
    word.parse()
        .map_err(|err: crate::auth::UnknownRole| err.to_string())
}

/// Runs a token command on its own small runtime.
pub fn run_token(args: TokenArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(token(args, &mut std::io::stdout().lock()))
}

async fn token(args: TokenArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let store = store::open(&args.db)
        .await
        .with_context(|| format!("could not open {}", store::redact_url(&args.db)))?;
    let result = match args.command {
        TokenCommand::Create {
            tenant,
            role,
            expires,
        } => {
            check_tenant(&tenant)?;
            let expires_at = expires
                .map(chrono::Duration::from_std)
                .transpose()?
                .map(|duration| Utc::now() + duration);
            let token = generate_token();
            let record = store
                .create_token(NewToken {
                    tenant: &tenant,
                    role,
                    hash: &hash_token(&token),
                    expires_at,
                })
                .await?;
            let until = record
                .expires_at
                .map_or_else(|| "until revoked".to_string(), |at| format!("until {at}"));
            writeln!(
                out,
                "created token {} ({} of tenant `{}`, valid {until}); it is shown only this once:",
                record.id, record.role, record.tenant
            )?;
            writeln!(out, "{token}")?;
            Ok(())
        }
        TokenCommand::List => {
            writeln!(out, "id\ttenant\trole\tcreated\texpires\trevoked")?;
            for t in store.tokens().await? {
                let date = |d: Option<chrono::DateTime<Utc>>| {
                    d.map_or_else(|| "-".to_string(), |d| d.to_rfc3339())
                };
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.tenant,
                    t.role,
                    t.created_at.to_rfc3339(),
                    date(t.expires_at),
                    date(t.revoked_at)
                )?;
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => match store.revoke_token(id).await? {
            Some(_) => {
                writeln!(out, "revoked token {id}")?;
                Ok(())
            }
            None => Err(anyhow::anyhow!("no token has id {id}")),
        },
    };
    store.close().await;
    result
}
