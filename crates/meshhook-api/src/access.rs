//! Authorisation: roles and the per-request database session.
//!
//! Every `/api/v1` handler that touches tenant data opens a [`Session`]: a
//! transaction running as `authenticated` with the caller's claims, so the
//! row-level-security policies of migration 0005 decide what exists for
//! this caller. Isolation therefore holds even where a handler forgets a
//! filter. On top of that, handlers ask [`Session::require`] for a minimum
//! role so the answer distinguishes the two refusals the contract names:
//!
//! - the caller cannot see the project (or the resource): **404**, exactly
//!   as if it did not exist;
//! - the caller can see it but its role is too low: **403**.
//!
//! A few engine calls write tables `authenticated` has no rights on (the
//! queue); for those the handler authorises under RLS first and then
//! [`Session::elevate`]s for the call, inside the same transaction.

use std::fmt;

use axum::http::StatusCode;
use meshhook_db::{Postgres, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Context;
use crate::auth::{Caller, Principal};
use crate::error::Error;
use crate::extract::ClientInfo;

/// A role in a project. Ordered: viewer < editor < admin < owner.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads.
    Viewer,
    /// Also edits workflows, publishes, runs, manages webhooks.
    Editor,
    /// Also manages secrets, members and API keys; reads the audit log.
    Admin,
    /// Also deletes the project.
    Owner,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request's transaction, as the caller.
pub struct Session {
    tx: Transaction<'static, Postgres>,
    pub caller: Caller,
    pub client: ClientInfo,
}

impl Session {
    /// Opens the transaction with the caller's claims as `authenticated`.
    pub async fn begin(ctx: &Context, caller: Caller, client: ClientInfo) -> Result<Self, Error> {
        let tx = meshhook_db::session::begin_as(&ctx.pool, caller.claims()).await?;
        Ok(Session { tx, caller, client })
    }

    /// The connection, for `meshhook_db` calls.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The caller's role in `project_id`, `None` when it cannot see it.
    pub async fn role_in(&mut self, project_id: Uuid) -> Result<Option<Role>, Error> {
        match &self.caller.principal {
            Principal::ApiKey {
                project_id: p,
                role,
                ..
            } => Ok((*p == project_id).then_some(*role)),
            Principal::User { id, .. } => {
                let id = *id;
                let role = meshhook_db::projects::member_role(&mut self.tx, project_id, id).await?;
                Ok(role.as_deref().and_then(Role::parse))
            }
        }
    }

    /// Requires at least `min` in `project_id`: 404 when the caller cannot
    /// see the project (`what` names the missing thing), 403 when its role
    /// is lower. Returns the caller's role.
    pub async fn require(
        &mut self,
        project_id: Uuid,
        min: Role,
        what: &str,
    ) -> Result<Role, Error> {
        match self.role_in(project_id).await? {
            None => Err(Error::not_found(what)),
            Some(role) if role < min => Err(Error::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this needs the {min} role or higher; you are {role}"),
            )),
            Some(role) => Ok(role),
        }
    }

    /// Like [`Session::require`], for a resource found through `project`
    /// (its project id, `None` when RLS hid it or it does not exist).
    pub async fn require_on(
        &mut self,
        project: Option<Uuid>,
        min: Role,
        what: &str,
    ) -> Result<(Uuid, Role), Error> {
        let project_id = project.ok_or_else(|| Error::not_found(what))?;
        let role = self.require(project_id, min, what).await?;
        Ok((project_id, role))
    }

    /// Leaves RLS for the rest of the transaction, for an engine call the
    /// caller was already authorised for.
    pub async fn elevate(&mut self) -> Result<(), Error> {
        meshhook_db::session::elevate(&mut self.tx).await?;
        Ok(())
    }

    /// Back under RLS after [`Session::elevate`].
    pub async fn restrict(&mut self) -> Result<(), Error> {
        meshhook_db::session::restrict(&mut self.tx).await?;
        Ok(())
    }

    /// Appends an audit row for an action in `project_id`, in this
    /// transaction (the action and its record commit together).
    pub async fn audit(
        &mut self,
        project_id: Option<Uuid>,
        action: &str,
        target: Option<(&str, String)>,
        details: Value,
    ) -> Result<(), Error> {
        let (actor_id, actor_kind) = self.caller.actor();
        let (target_type, target_id) = target.unzip();
        let entry = meshhook_db::audit::Entry {
            project_id,
            actor_id: Some(actor_id),
            actor_kind,
            action,
            target_type,
            target_id,
            details,
            ip: self.client.ip.map(|ip| ip.to_string()),
            user_agent: self.client.user_agent.as_deref(),
        };
        meshhook_db::audit::record(&mut self.tx, &entry).await?;
        Ok(())
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), Error> {
        self.tx.commit().await?;
        Ok(())
    }
}
