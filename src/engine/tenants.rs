//! Districts, schools and tenant metadata: served from the directory, never
//! through an actor's mailbox.

use crate::domain::{Caller, Tenant, TenantId, TenantKind, TenantName, TenantPatch, Timestamp};
use crate::store::IdSpace;

use super::actor::Restored;
use super::answers::{answer, Keyed};
use super::durable::Durable;
use super::error::{Error, Missing};
use super::pool::SeatPool;
use super::{Action, Engine};

impl Engine {
    pub async fn create_district(
        &self,
        caller: &Caller,
        name: TenantName,
        keyed: Option<Keyed<Tenant>>,
    ) -> Result<Durable<Tenant>, Error> {
        self.access.create_district(caller)?;
        self.create_tenant(name, TenantKind::District, None, None, keyed)
    }

    pub async fn create_school(
        &self,
        caller: &Caller,
        district: TenantId,
        name: TenantName,
        keyed: Option<Keyed<Tenant>>,
    ) -> Result<Durable<Tenant>, Error> {
        if self.directory.district(district).is_none() {
            return Err(Error::NotFound(Missing::District));
        }
        self.check(caller, Action::ManageTenant, district, Missing::District)
            .await?;
        self.writable(district).await?;
        self.create_tenant(name, TenantKind::School, Some(district), None, keyed)
    }

    /// Makes a tenant (`sourced_id`: the roster org it is, for a school a
    /// roster import makes).
    pub(super) fn create_tenant(
        &self,
        name: TenantName,
        kind: TenantKind,
        parent_id: Option<TenantId>,
        sourced_id: Option<String>,
        keyed: Option<Keyed<Tenant>>,
    ) -> Result<Durable<Tenant>, Error> {
        let now = Timestamp::now();
        let tenant = Tenant {
            id: self.new_id(IdSpace::Tenant)?,
            name,
            kind,
            parent_id,
            created_at: now,
            updated_at: now,
            is_active: true,
            sourced_id,
        };
        let seq = self.store.put_tenant(&tenant, answer(keyed, &tenant).as_ref())?;
        self.register_new_tenant(&tenant, seq);
        Ok(Durable::after(seq, Ok(tenant)))
    }

    /// A tenant new to this engine (made here, or a standby's from the
    /// feed): its actor, with no seats yet.
    pub(super) fn register_new_tenant(&self, tenant: &Tenant, seq: crate::store::Seq) {
        self.spawner.register(
            &self.directory,
            tenant.clone(),
            SeatPool::new(tenant.id),
            seq,
            Restored::default(),
            Vec::new(),
        );
    }

    pub async fn tenant(&self, caller: &Caller, id: TenantId) -> Result<Durable<Tenant>, Error> {
        self.check(caller, Action::Read, id, Missing::Tenant).await?;
        let (tenant, seq) = self.directory.tenant(id).ok_or(Error::NotFound(Missing::Tenant))?;
        Ok(Durable::after(seq, Ok(tenant)))
    }

    /// A district and its schools.
    pub async fn district(&self, caller: &Caller, id: TenantId) -> Result<Durable<(Tenant, Vec<Tenant>)>, Error> {
        let (district, children, mut seq) = self.directory.district(id).ok_or(Error::NotFound(Missing::District))?;
        self.check(caller, Action::Read, id, Missing::District).await?;
        let mut schools = Vec::with_capacity(children.len());
        for child in children {
            if let Some((school, s)) = self.directory.tenant(child) {
                seq = seq.max(s);
                schools.push(school);
            }
        }
        Ok(Durable::after(seq, Ok((district, schools))))
    }

    /// Renames or (de)activates a tenant. Allowed on an inactive tenant: this
    /// is how it is reactivated.
    pub async fn update_tenant(
        &self,
        caller: &Caller,
        id: TenantId,
        patch: TenantPatch,
        keyed: Option<Keyed<Tenant>>,
    ) -> Result<Durable<Tenant>, Error> {
        self.check(caller, Action::ManageTenant, id, Missing::Tenant).await?;
        self.change_tenant(id, keyed, |next| {
            if let Some(name) = patch.name {
                next.name = name;
            }
            if let Some(active) = patch.is_active {
                next.is_active = active;
            }
        })
    }

    /// Changes a tenant's stored fields (nothing is written if `change`
    /// leaves it as it is), once the caller may.
    pub(super) fn change_tenant(
        &self,
        id: TenantId,
        keyed: Option<Keyed<Tenant>>,
        change: impl FnOnce(&mut Tenant),
    ) -> Result<Durable<Tenant>, Error> {
        let (tenant, seq) = self
            .directory
            .update_tenant(id, |current| {
                let mut next = current.clone();
                change(&mut next);
                if next == *current {
                    // Nothing to change: the answer (if kept) is the only write.
                    return match answer(keyed, current) {
                        Some(a) => Ok::<_, Error>(Some((next, self.store.put_answer(&a)?))),
                        None => Ok(None),
                    };
                }
                next.updated_at = Timestamp::now();
                let seq = self.store.put_tenant(&next, answer(keyed, &next).as_ref())?;
                Ok(Some((next, seq)))
            })
            .ok_or(Error::NotFound(Missing::Tenant))??;
        Ok(Durable::after(seq, Ok(tenant)))
    }
}
