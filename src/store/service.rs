//! The store's threads: one writer, a small pool of readers, fed by bounded queues of
//! typed commands; each command carries a oneshot sender for its result.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::call_command_model::{
    CallAction, CallCommand, CallCommandId, CallCommandResult, CallCommandStatus,
};
use super::conference_model::{
    CommandResult, CommandStatus, ConferenceCommand, ConferenceCommandId, ConferenceControl,
    ConferenceId, ConferenceLive, ConferenceLiveSnapshot, ConferenceLogFilter, ConferenceRecord,
    ConferenceRoom, ConferenceRoomId, ConferenceSummary, NewRoom, PinRole, RoomChanges, RoomPin,
    RoomSummary, RoomsSnapshot,
};
use super::directory::CacheEntry;
use super::model::{
    Binding, CachedLookup, CallFilter, CallId, CallRecord, CallSummary, Contact, ContactId,
    ImportReport, LegRecord, LocalName, MediaStatsRecord, NewContact, NewUser, NumberKind,
    Password, PresentableNumbers, SipCredentials, Tenant, TenantId, TenantNumber, TenantSummary,
    User, UserId, UserSettings,
};
use super::queue_model::{
    AgentPresence, LocalDate, OverflowCondition, OverflowRule, Queue, QueueConfigSnapshot,
    QueueDefinition, QueueDetails, QueueHoliday, QueueId, QueueLive, QueueLogFilter, QueueMember,
    QueueStatsReport, QueueSummary, QueueVisitSummary, TenantSettings, VipNumber, WeeklyHours,
};
use super::{
    call_commands, calllog, conference, directory, queuelog, queues, repo, schema, settings,
    StoreError,
};

/// Tuning of a [`Store`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Capacity of the write queue; when full, writes fail with [`StoreError::QueueFull`].
    pub write_queue: usize,
    /// Capacity of the read queue; when full, reads fail with [`StoreError::QueueFull`].
    pub read_queue: usize,
    /// Number of reader threads (at least 1).
    pub readers: usize,
    /// How long a statement waits for another process's lock (e.g. the CLI writing
    /// while the daemon runs) before failing.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            write_queue: 1024,
            read_queue: 1024,
            readers: 2,
            busy_timeout: schema::BUSY_TIMEOUT,
        }
    }
}

type Tx<T> = oneshot::Sender<Result<T, StoreError>>;

/// A command for the writer thread.
enum WriteCmd {
    AddTenant(String, Tx<TenantId>),
    RemoveTenant(TenantId, bool, Tx<()>),
    AddTenantNumber(TenantId, String, NumberKind, Option<UserId>, Tx<()>),
    AssignTenantNumber(TenantId, String, Option<UserId>, Tx<()>),
    RemoveTenantNumber(TenantId, String, Tx<()>),
    AddUser(Box<NewUser>, Tx<UserId>),
    RemoveUser(UserId, Tx<()>),
    SetUserPassword(UserId, Password, Tx<()>),
    SetUserSettings(UserId, Box<UserSettings>, Tx<()>),
    UpsertBinding(Box<Binding>, Tx<()>),
    RemoveBinding(String, String, Tx<bool>),
    RemoveAllBindings(String, Tx<u64>),
    LoadBindings(i64, Tx<Vec<Binding>>),
    LoadOrCreateSecret(String, [u8; 32], Tx<[u8; 32]>),
    AddContact(Box<NewContact>, Tx<ContactId>),
    ImportContacts(TenantId, String, Tx<ImportReport>),
    RemoveContact(TenantId, String, Tx<()>),
    CachePut(Box<CacheEntry>, Tx<()>),
    CachePurge(i64, Tx<u64>),
    WriteCall(Box<CallRecord>, Tx<CallId>),
    DeleteCallsBefore(i64, Tx<u64>),
    AddQueue(TenantId, Box<QueueDefinition>, Tx<QueueId>),
    UpdateQueue(QueueId, Box<QueueDefinition>, Tx<()>),
    RemoveQueue(QueueId, bool, Tx<()>),
    AddQueueMember(QueueId, UserId, Option<u32>, Option<u32>, Tx<bool>),
    RemoveQueueMember(QueueId, UserId, Tx<()>),
    SetOverflowRule(QueueId, Box<OverflowRule>, Tx<()>),
    ClearOverflowRule(QueueId, OverflowCondition, Tx<bool>),
    SetQueueHours(QueueId, Vec<WeeklyHours>, Tx<()>),
    AddQueueHoliday(QueueId, QueueHoliday, Tx<()>),
    RemoveQueueHoliday(QueueId, LocalDate, Tx<()>),
    AssignQueueNumber(TenantId, String, Option<QueueId>, Tx<()>),
    AddQueueNumber(TenantId, String, NumberKind, QueueId, Tx<()>),
    AddVip(TenantId, String, Option<String>, Tx<()>),
    RemoveVip(TenantId, String, Tx<()>),
    SetTenantSettings(TenantId, Box<TenantSettings>, Tx<()>),
    SetAgentPresence(UserId, AgentPresence, i64, Tx<()>),
    WriteQueueLive(Vec<QueueLive>, Tx<()>),
    DeleteQueueHistoryExpired(i64, Tx<u64>),
    AddRoom(TenantId, Box<NewRoom>, Tx<ConferenceRoomId>),
    UpdateRoom(ConferenceRoomId, Box<RoomChanges>, Tx<()>),
    RemoveRoom(ConferenceRoomId, Tx<()>),
    WriteConference(Box<ConferenceRecord>, Tx<ConferenceId>),
    WriteConferenceLive(i64, Vec<ConferenceLive>, Tx<()>),
    SendConferenceCommand(
        ConferenceRoomId,
        ConferenceControl,
        i64,
        Tx<ConferenceCommandId>,
    ),
    ExpireConferenceCommand(ConferenceCommandId, i64, Tx<CommandStatus>),
    PendingConferenceCommands(i64, Tx<Vec<ConferenceCommand>>),
    FinishConferenceCommand(ConferenceCommandId, CommandResult, i64, Tx<bool>),
    SendCallCommand(TenantId, UserId, CallAction, i64, Tx<CallCommandId>),
    ExpireCallCommand(CallCommandId, i64, Tx<CallCommandStatus>),
    PendingCallCommands(i64, Tx<Vec<CallCommand>>),
    FinishCallCommand(CallCommandId, CallCommandResult, i64, Tx<bool>),
    /// Stop after everything queued before it.
    Shutdown,
}

/// A query for a reader thread.
enum ReadCmd {
    FindTenant(String, Tx<Option<Tenant>>),
    ListTenants(Tx<Vec<TenantSummary>>),
    ListTenantNumbers(TenantId, Tx<Vec<TenantNumber>>),
    LookupNumber(String, Tx<Option<TenantNumber>>),
    RouteNumber(String, Tx<Option<(TenantNumber, Option<User>)>>),
    PresentableNumbers(UserId, Tx<PresentableNumbers>),
    ListUsers(Option<TenantId>, Tx<Vec<User>>),
    FindUser(TenantId, String, Tx<Option<User>>),
    FindUserById(UserId, Tx<Option<User>>),
    UserSettings(UserId, Tx<UserSettings>),
    LookupUserByMobile(String, Tx<Option<User>>),
    LookupSipUser(String, String, Tx<Option<SipCredentials>>),
    ListContacts(TenantId, Tx<Vec<Contact>>),
    LookupLocalName(TenantId, String, Tx<Option<LocalName>>),
    CacheGet(String, i64, Tx<Option<CachedLookup>>),
    ListCalls(CallFilter, Tx<Vec<CallSummary>>),
    CallLegs(CallId, Tx<Vec<LegRecord>>),
    CallMedia(CallId, Tx<Vec<MediaStatsRecord>>),
    FindQueue(TenantId, String, Tx<Option<Queue>>),
    ListQueues(Option<TenantId>, Tx<Vec<QueueSummary>>),
    QueueDetailsOf(QueueId, Tx<QueueDetails>),
    ListQueueMembers(QueueId, Tx<Vec<QueueMember>>),
    ListVips(TenantId, Tx<Vec<VipNumber>>),
    AgentPresenceOf(UserId, Tx<AgentPresence>),
    LoadQueueConfig(Tx<QueueConfigSnapshot>),
    QueueConfigRevision(Tx<i64>),
    ReadQueueLive(Option<TenantId>, Tx<Vec<QueueLive>>),
    QueueTodayCounts(i64, Tx<Vec<(QueueId, u32, u32)>>),
    QueueStats(TenantId, i64, i64, Tx<QueueStatsReport>),
    QueueLog(QueueLogFilter, Tx<Vec<QueueVisitSummary>>),
    FindRoom(TenantId, String, Tx<Option<ConferenceRoom>>),
    ListRooms(Option<TenantId>, Tx<Vec<RoomSummary>>),
    RoomByNumber(String, Tx<Option<ConferenceRoom>>),
    RoomByExtension(TenantId, String, Tx<Option<ConferenceRoom>>),
    VerifyRoomPin(ConferenceRoomId, RoomPin, Tx<Option<PinRole>>),
    LoadRooms(Tx<RoomsSnapshot>),
    ConferenceConfigRevision(Tx<i64>),
    ListConferences(ConferenceLogFilter, Tx<Vec<ConferenceSummary>>),
    ReadConferenceLive(
        TenantId,
        Option<ConferenceRoomId>,
        Tx<ConferenceLiveSnapshot>,
    ),
    ConferenceCommandStatus(ConferenceCommandId, Tx<CommandStatus>),
    CallCommandStatus(CallCommandId, Tx<CallCommandStatus>),
    /// Stop (one reader per marker) after everything queued before it.
    Shutdown,
}

/// The result of a queued command: `.await` it from async code or [`Reply::wait`] for it
/// from a plain thread. Dropping it does not cancel the command; it still runs.
#[must_use = "the command runs anyway; await or wait() to learn whether it succeeded"]
#[derive(Debug)]
pub struct Reply<T> {
    state: ReplyState<T>,
}

#[derive(Debug)]
enum ReplyState<T> {
    Queued(oneshot::Receiver<Result<T, StoreError>>),
    /// Enqueueing failed; the error is taken on first poll.
    Failed(Option<StoreError>),
}

impl<T> Reply<T> {
    /// Blocks the current thread until the result is ready.
    ///
    /// For threads outside the async runtime (the CLI, `spawn_blocking`): tokio panics
    /// if this is called on a runtime worker thread. Use `.await` there.
    pub fn wait(self) -> Result<T, StoreError> {
        match self.state {
            ReplyState::Queued(rx) => rx.blocking_recv().unwrap_or(Err(StoreError::Closed)),
            ReplyState::Failed(e) => Err(e.unwrap_or(StoreError::Closed)),
        }
    }
}

impl<T> Future for Reply<T> {
    type Output = Result<T, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            ReplyState::Queued(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(StoreError::Closed))),
            ReplyState::Failed(e) => Poll::Ready(Err(e.take().unwrap_or(StoreError::Closed))),
        }
    }
}

/// Queues a command built around a fresh oneshot sender without blocking.
fn enqueue<C, T>(queue: &SyncSender<C>, make: impl FnOnce(Tx<T>) -> C) -> Reply<T> {
    let (tx, rx) = oneshot::channel();
    let state = match queue.try_send(make(tx)) {
        Ok(()) => ReplyState::Queued(rx),
        Err(TrySendError::Full(_)) => ReplyState::Failed(Some(StoreError::QueueFull)),
        Err(TrySendError::Disconnected(_)) => ReplyState::Failed(Some(StoreError::Closed)),
    };
    Reply { state }
}

/// A cheap, cloneable sender of store commands. Every method queues at once and never
/// blocks; the returned [`Reply`] yields the result.
#[derive(Clone, Debug)]
pub struct StoreHandle {
    writes: SyncSender<WriteCmd>,
    reads: SyncSender<ReadCmd>,
}

impl std::fmt::Debug for WriteCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Commands hold personal data and passwords: never print their contents.
        f.write_str("WriteCmd")
    }
}

impl std::fmt::Debug for ReadCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadCmd")
    }
}

impl StoreHandle {
    /// Creates a tenant.
    pub fn add_tenant(&self, name: &str) -> Reply<TenantId> {
        enqueue(&self.writes, |tx| WriteCmd::AddTenant(name.to_owned(), tx))
    }

    /// Finds a tenant by name (ASCII case-insensitive).
    pub fn find_tenant(&self, name: &str) -> Reply<Option<Tenant>> {
        enqueue(&self.reads, |tx| ReadCmd::FindTenant(name.to_owned(), tx))
    }

    /// Lists all tenants by name, with user and number counts.
    pub fn list_tenants(&self) -> Reply<Vec<TenantSummary>> {
        enqueue(&self.reads, ReadCmd::ListTenants)
    }

    /// Removes a tenant; unless `force`, fails with [`StoreError::TenantInUse`] while it
    /// has users, numbers, queues or conference rooms. With `force` they go too (and the
    /// bindings).
    pub fn remove_tenant(&self, id: TenantId, force: bool) -> Reply<()> {
        enqueue(&self.writes, |tx| WriteCmd::RemoveTenant(id, force, tx))
    }

    /// Adds an E.164 number to a tenant, assigned to one of its users if `user` is
    /// given (a personal number only).
    pub fn add_tenant_number(
        &self,
        tenant: TenantId,
        number: &str,
        kind: NumberKind,
        user: Option<UserId>,
    ) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::AddTenantNumber(tenant, number.to_owned(), kind, user, tx)
        })
    }

    /// Assigns a tenant's personal number to one of its users, or unassigns it (`None`).
    pub fn assign_tenant_number(
        &self,
        tenant: TenantId,
        number: &str,
        user: Option<UserId>,
    ) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::AssignTenantNumber(tenant, number.to_owned(), user, tx)
        })
    }

    /// Removes a number from a tenant ([`StoreError::NotFound`] if the tenant does not
    /// have it).
    pub fn remove_tenant_number(&self, tenant: TenantId, number: &str) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::RemoveTenantNumber(tenant, number.to_owned(), tx)
        })
    }

    /// Lists a tenant's numbers.
    pub fn list_tenant_numbers(&self, tenant: TenantId) -> Reply<Vec<TenantNumber>> {
        enqueue(&self.reads, |tx| ReadCmd::ListTenantNumbers(tenant, tx))
    }

    /// Finds which tenant owns a number (inbound routing).
    pub fn lookup_number(&self, number: &str) -> Reply<Option<TenantNumber>> {
        enqueue(&self.reads, |tx| {
            ReadCmd::LookupNumber(number.to_owned(), tx)
        })
    }

    /// Where an inbound call to a number goes: its tenant number and, for a personal
    /// number, the user it rings (one read).
    pub fn route_number(&self, number: &str) -> Reply<Option<(TenantNumber, Option<User>)>> {
        enqueue(&self.reads, |tx| {
            ReadCmd::RouteNumber(number.to_owned(), tx)
        })
    }

    /// The numbers a user's outgoing calls may present (own and main, both the tenant's).
    pub fn presentable_numbers(&self, user: UserId) -> Reply<PresentableNumbers> {
        enqueue(&self.reads, |tx| ReadCmd::PresentableNumbers(user, tx))
    }

    /// Creates a user; the password is hashed on the writer thread and dropped.
    pub fn add_user(&self, user: NewUser) -> Reply<UserId> {
        enqueue(&self.writes, |tx| WriteCmd::AddUser(Box::new(user), tx))
    }

    /// Lists users of one tenant, or of all tenants.
    pub fn list_users(&self, tenant: Option<TenantId>) -> Reply<Vec<User>> {
        enqueue(&self.reads, |tx| ReadCmd::ListUsers(tenant, tx))
    }

    /// Finds a user by tenant and extension.
    pub fn find_user(&self, tenant: TenantId, extension: &str) -> Reply<Option<User>> {
        enqueue(&self.reads, |tx| {
            ReadCmd::FindUser(tenant, extension.to_owned(), tx)
        })
    }

    /// Finds a user by row id.
    pub fn find_user_by_id(&self, user: UserId) -> Reply<Option<User>> {
        enqueue(&self.reads, |tx| ReadCmd::FindUserById(user, tx))
    }

    /// A user's call settings: the defaults (no forwarding, 20 s, own number) if none
    /// were set; [`StoreError::NotFound`] if the user does not exist.
    pub fn user_settings(&self, user: UserId) -> Reply<UserSettings> {
        enqueue(&self.reads, |tx| ReadCmd::UserSettings(user, tx))
    }

    /// Replaces a user's call settings. Refused with [`StoreError::Invalid`] naming the
    /// field: a target that is neither E.164 nor an extension, a target equal to the
    /// user's own extension or mobile, `no_answer_s` outside 5..=120.
    pub fn set_user_settings(&self, user: UserId, settings: UserSettings) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::SetUserSettings(user, Box::new(settings), tx)
        })
    }

    /// Finds the user owning a mobile number (calls from the trunk marked as originating).
    pub fn lookup_user_by_mobile(&self, mobile: &str) -> Reply<Option<User>> {
        enqueue(&self.reads, |tx| {
            ReadCmd::LookupUserByMobile(mobile.to_owned(), tx)
        })
    }

    /// Removes a user and the user's bindings.
    pub fn remove_user(&self, id: UserId) -> Reply<()> {
        enqueue(&self.writes, |tx| WriteCmd::RemoveUser(id, tx))
    }

    /// Replaces a user's password (its HA1 hashes).
    pub fn set_user_password(&self, id: UserId, password: Password) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::SetUserPassword(id, password, tx)
        })
    }

    /// Fetches the digest credentials of `username` in `realm` (exact, case-sensitive).
    pub fn lookup_sip_user(&self, realm: &str, username: &str) -> Reply<Option<SipCredentials>> {
        enqueue(&self.reads, |tx| {
            ReadCmd::LookupSipUser(realm.to_owned(), username.to_owned(), tx)
        })
    }

    /// Inserts a binding or refreshes the one with the same (aor, contact).
    pub fn upsert_binding(&self, binding: Binding) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::UpsertBinding(Box::new(binding), tx)
        })
    }

    /// Removes one binding; the reply tells whether it existed.
    pub fn remove_binding(&self, aor: &str, contact: &str) -> Reply<bool> {
        enqueue(&self.writes, |tx| {
            WriteCmd::RemoveBinding(aor.to_owned(), contact.to_owned(), tx)
        })
    }

    /// Removes every binding of an AOR; the reply is how many there were.
    pub fn remove_all_bindings(&self, aor: &str) -> Reply<u64> {
        enqueue(&self.writes, |tx| {
            WriteCmd::RemoveAllBindings(aor.to_owned(), tx)
        })
    }

    /// Deletes bindings expired at `now_unix` and returns the others (registrar start-up).
    /// Runs on the writer, so it sees every write queued before it.
    pub fn load_bindings(&self, now_unix: i64) -> Reply<Vec<Binding>> {
        enqueue(&self.writes, |tx| WriteCmd::LoadBindings(now_unix, tx))
    }

    /// The 32-byte secret named `name`, created from `candidate` on first use, so it
    /// survives restarts (the registrar's nonce key).
    pub fn load_or_create_secret(&self, name: &str, candidate: [u8; 32]) -> Reply<[u8; 32]> {
        enqueue(&self.writes, |tx| {
            WriteCmd::LoadOrCreateSecret(name.to_owned(), candidate, tx)
        })
    }

    // ---- directory of contacts ----

    /// Adds a contact to a tenant's directory ([`StoreError::Duplicate`] with
    /// `Field::ContactNumber` if the directory already has the number).
    pub fn add_contact(&self, contact: NewContact) -> Reply<ContactId> {
        enqueue(&self.writes, |tx| {
            WriteCmd::AddContact(Box::new(contact), tx)
        })
    }

    /// Imports a CSV directory (header `number,first_name,last_name,company,department`,
    /// optional `note`; `,` or `;`) into a tenant in one transaction, inserting or
    /// updating by number. Bad lines are reported in the [`ImportReport`]; an unusable
    /// header fails with [`StoreError::CsvHeader`].
    pub fn import_contacts_csv(&self, tenant: TenantId, csv_text: String) -> Reply<ImportReport> {
        enqueue(&self.writes, |tx| {
            WriteCmd::ImportContacts(tenant, csv_text, tx)
        })
    }

    /// Lists a tenant's directory by last name (or company), first name.
    pub fn list_contacts(&self, tenant: TenantId) -> Reply<Vec<Contact>> {
        enqueue(&self.reads, |tx| ReadCmd::ListContacts(tenant, tx))
    }

    /// Removes a contact by number ([`StoreError::NotFound`] if the tenant lacks it).
    pub fn remove_contact(&self, tenant: TenantId, number: &str) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::RemoveContact(tenant, number.to_owned(), tx)
        })
    }

    // ---- caller lookup ----

    /// Finds a caller name in the tenant's own data: a user of the tenant whose mobile
    /// is `number`, else the tenant's directory ("first last", else company). A number
    /// not in E.164 form finds nothing (no error).
    pub fn lookup_local_name(&self, tenant: TenantId, number: &str) -> Reply<Option<LocalName>> {
        enqueue(&self.reads, |tx| {
            ReadCmd::LookupLocalName(tenant, number.to_owned(), tx)
        })
    }

    /// The external directory's cached answer for `number`, unless it expired at or
    /// before `now_unix` (then, or if absent, `None`: ask the service).
    pub fn cache_get(&self, number: &str, now_unix: i64) -> Reply<Option<CachedLookup>> {
        enqueue(&self.reads, |tx| {
            ReadCmd::CacheGet(number.to_owned(), now_unix, tx)
        })
    }

    /// Caches the external directory's answer for an E.164 `number` for `ttl_s`
    /// seconds from `now_unix`, replacing any entry. `found == false` stores a negative
    /// entry (name and address dropped). Name and address are cleaned and cut to 100
    /// and 200 characters, never refused.
    pub fn cache_put(
        &self,
        number: &str,
        name: Option<&str>,
        address: Option<&str>,
        found: bool,
        now_unix: i64,
        ttl_s: u64,
    ) -> Reply<()> {
        let entry = CacheEntry {
            number: number.to_owned(),
            name: name.map(str::to_owned),
            address: address.map(str::to_owned),
            found,
            now_unix,
            ttl_s,
        };
        enqueue(&self.writes, |tx| WriteCmd::CachePut(Box::new(entry), tx))
    }

    /// Deletes cache entries expired at or before `now_unix`; the reply is how many.
    pub fn cache_purge(&self, now_unix: i64) -> Reply<u64> {
        enqueue(&self.writes, |tx| WriteCmd::CachePurge(now_unix, tx))
    }

    // ---- call log ----

    /// Writes a finished call with its legs, users and media statistics in one
    /// transaction. Its content
    /// never makes it fail (text is cleaned and cut; ids of tenants or users removed
    /// meanwhile are stored as absent); `answered_by` is also recorded with the role
    /// `answered`. Queued writes are applied before [`Store::close`] returns.
    pub fn write_call(&self, call: CallRecord) -> Reply<CallId> {
        enqueue(&self.writes, |tx| WriteCmd::WriteCall(Box::new(call), tx))
    }

    /// Lists calls matching `filter`, newest first (by start, then by id), each with its
    /// media statistics.
    pub fn list_calls(&self, filter: CallFilter) -> Reply<Vec<CallSummary>> {
        enqueue(&self.reads, |tx| ReadCmd::ListCalls(filter, tx))
    }

    /// The legs of a call in creation order ([`StoreError::NotFound`] if no such call).
    pub fn call_legs(&self, call: CallId) -> Reply<Vec<LegRecord>> {
        enqueue(&self.reads, |tx| ReadCmd::CallLegs(call, tx))
    }

    /// The media statistics of a call, caller side first; empty when its media was not
    /// anchored ([`StoreError::NotFound`] if no such call).
    pub fn call_media(&self, call: CallId) -> Reply<Vec<MediaStatsRecord>> {
        enqueue(&self.reads, |tx| ReadCmd::CallMedia(call, tx))
    }

    /// Retention: deletes calls started before `cutoff_ms` (Unix ms) with their legs,
    /// users and media statistics, and conferences started before it with their
    /// participants (and conference control commands sent before it); the reply is how
    /// many calls. The runtime runs it hourly with now - 30 days.
    pub fn delete_calls_before(&self, cutoff_ms: i64) -> Reply<u64> {
        enqueue(&self.writes, |tx| {
            WriteCmd::DeleteCallsBefore(cutoff_ms, tx)
        })
    }

    // ---- queues: provisioning ----

    /// Creates a queue or answer group with its numbers in one transaction. Refused with
    /// [`StoreError::Invalid`] naming the field (a setting out of range, a bad prompt
    /// name or number), [`StoreError::Duplicate`] (`Field::QueueName` taken in the
    /// tenant; `Field::Number` owned by another tenant), `Invalid` with
    /// `Field::NumberKind` for a personal number, [`StoreError::NotFound`] for the tenant.
    pub fn add_queue(&self, tenant: TenantId, def: QueueDefinition) -> Reply<QueueId> {
        enqueue(&self.writes, |tx| {
            WriteCmd::AddQueue(tenant, Box::new(def), tx)
        })
    }

    /// Replaces a queue's name and settings, and leads `def.numbers` to it (numbers
    /// already leading to it stay). Errors as [`add_queue`](Self::add_queue).
    pub fn update_queue(&self, queue: QueueId, def: QueueDefinition) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::UpdateQueue(queue, Box::new(def), tx)
        })
    }

    /// Removes a queue with its members, rules and hours (its numbers stay with the
    /// tenant, leading nowhere; its history stays). While another queue's overflow rule
    /// leads to it, refused with [`StoreError::QueueInUse`] naming those queues, unless
    /// `force`, which removes those rules too.
    pub fn remove_queue(&self, queue: QueueId, force: bool) -> Reply<()> {
        enqueue(&self.writes, |tx| WriteCmd::RemoveQueue(queue, force, tx))
    }

    /// Finds a queue of a tenant by name (ASCII case-insensitive).
    pub fn find_queue(&self, tenant: TenantId, name: &str) -> Reply<Option<Queue>> {
        enqueue(&self.reads, |tx| {
            ReadCmd::FindQueue(tenant, name.to_owned(), tx)
        })
    }

    /// Lists queues of one tenant, or of all, by tenant name then queue name.
    pub fn list_queues(&self, tenant: Option<TenantId>) -> Reply<Vec<QueueSummary>> {
        enqueue(&self.reads, |tx| ReadCmd::ListQueues(tenant, tx))
    }

    /// Everything about one queue, read in one transaction ([`StoreError::NotFound`]
    /// with `Entity::Queue` if there is none).
    pub fn queue_details(&self, queue: QueueId) -> Reply<QueueDetails> {
        enqueue(&self.reads, |tx| ReadCmd::QueueDetailsOf(queue, tx))
    }

    /// Adds a user of the queue's tenant as a member, or changes a member's position
    /// and ring time (`None`: append a new member / keep). The reply is true for a new
    /// member. A user of another tenant is [`StoreError::NotFound`] (`Entity::User`).
    pub fn add_queue_member(
        &self,
        queue: QueueId,
        user: UserId,
        position: Option<u32>,
        ring_timeout_s: Option<u32>,
    ) -> Reply<bool> {
        enqueue(&self.writes, |tx| {
            WriteCmd::AddQueueMember(queue, user, position, ring_timeout_s, tx)
        })
    }

    /// Removes a member ([`StoreError::NotFound`] with `Entity::Member` if not one).
    pub fn remove_queue_member(&self, queue: QueueId, user: UserId) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::RemoveQueueMember(queue, user, tx)
        })
    }

    /// A queue's members by position.
    pub fn list_queue_members(&self, queue: QueueId) -> Reply<Vec<QueueMember>> {
        enqueue(&self.reads, |tx| ReadCmd::ListQueueMembers(queue, tx))
    }

    /// Sets a queue's overflow rule for the rule's condition (replacing any). A queue
    /// cannot overflow to itself ([`StoreError::Invalid`], `Field::OverflowTarget`); a
    /// target queue or user must be of the same tenant ([`StoreError::NotFound`]).
    pub fn set_overflow_rule(&self, queue: QueueId, rule: OverflowRule) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::SetOverflowRule(queue, Box::new(rule), tx)
        })
    }

    /// Removes a queue's overflow rule for a condition; the reply tells whether there
    /// was one.
    pub fn clear_overflow_rule(&self, queue: QueueId, condition: OverflowCondition) -> Reply<bool> {
        enqueue(&self.writes, |tx| {
            WriteCmd::ClearOverflowRule(queue, condition, tx)
        })
    }

    /// Replaces a queue's weekly opening hours (ranges of a day must not overlap). An
    /// empty list makes the queue always open and removes its holidays.
    pub fn set_queue_hours(&self, queue: QueueId, hours: Vec<WeeklyHours>) -> Reply<()> {
        enqueue(&self.writes, |tx| WriteCmd::SetQueueHours(queue, hours, tx))
    }

    /// Adds or replaces a queue's holiday; refused for a queue without weekly hours
    /// ([`StoreError::Invalid`], `Field::Hours`).
    pub fn add_queue_holiday(&self, queue: QueueId, holiday: QueueHoliday) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::AddQueueHoliday(queue, holiday, tx)
        })
    }

    /// Removes a queue's holiday ([`StoreError::NotFound`] with `Entity::Holiday`).
    pub fn remove_queue_holiday(&self, queue: QueueId, date: LocalDate) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::RemoveQueueHoliday(queue, date, tx)
        })
    }

    /// Leads a tenant's main or queue number to one of its queues, or to none
    /// (`NotFound(Number)` if the tenant does not own it; `Invalid(NumberKind)` for a
    /// personal number).
    pub fn assign_queue_number(
        &self,
        tenant: TenantId,
        number: &str,
        queue: Option<QueueId>,
    ) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::AssignQueueNumber(tenant, number.to_owned(), queue, tx)
        })
    }

    /// Adds a main or queue number to a tenant, leading to one of its queues.
    pub fn add_queue_number(
        &self,
        tenant: TenantId,
        number: &str,
        kind: NumberKind,
        queue: QueueId,
    ) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::AddQueueNumber(tenant, number.to_owned(), kind, queue, tx)
        })
    }

    /// Adds a VIP number (E.164) to a tenant, with an optional note.
    pub fn add_vip(&self, tenant: TenantId, number: &str, note: Option<&str>) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::AddVip(tenant, number.to_owned(), note.map(str::to_owned), tx)
        })
    }

    /// Removes a VIP number ([`StoreError::NotFound`] with `Entity::Vip` if absent).
    pub fn remove_vip(&self, tenant: TenantId, number: &str) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::RemoveVip(tenant, number.to_owned(), tx)
        })
    }

    /// A tenant's VIP numbers.
    pub fn list_vips(&self, tenant: TenantId) -> Reply<Vec<VipNumber>> {
        enqueue(&self.reads, |tx| ReadCmd::ListVips(tenant, tx))
    }

    /// Changes a tenant's time zone (an IANA name known to the bundled database) and/or
    /// queue history retention (1 to 3650 days).
    pub fn set_tenant_settings(&self, tenant: TenantId, settings: TenantSettings) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::SetTenantSettings(tenant, Box::new(settings), tx)
        })
    }

    /// Sets an agent's presence, changed at `at_ms` (Unix ms); a no-op when unchanged.
    pub fn set_agent_presence(
        &self,
        user: UserId,
        presence: AgentPresence,
        at_ms: i64,
    ) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::SetAgentPresence(user, presence, at_ms, tx)
        })
    }

    /// An agent's stored presence (logged out if none was ever set).
    pub fn agent_presence(&self, user: UserId) -> Reply<AgentPresence> {
        enqueue(&self.reads, |tx| ReadCmd::AgentPresenceOf(user, tx))
    }

    // ---- queues: the daemon ----

    /// Everything the queue engine needs (every queue with members, rules, hours,
    /// holidays, numbers and its tenant's time zone; VIP numbers per tenant; every
    /// agent's presence), read in one transaction, with the revision it shows.
    pub fn load_queue_config(&self) -> Reply<QueueConfigSnapshot> {
        enqueue(&self.reads, ReadCmd::LoadQueueConfig)
    }

    /// The queue configuration's revision: it changes with every change of queues,
    /// members, rules, hours, holidays, VIP numbers, agents' presence, tenant numbers or
    /// a tenant's time zone (SQLite triggers, so the CLI's changes count too). Poll it and
    /// reload with [`load_queue_config`](Self::load_queue_config) when it changed.
    pub fn queue_config_revision(&self) -> Reply<i64> {
        enqueue(&self.reads, ReadCmd::QueueConfigRevision)
    }

    /// Replaces the live snapshot with these rows in one transaction (rows of queues
    /// removed meanwhile are skipped).
    pub fn write_queue_live(&self, rows: Vec<QueueLive>) -> Reply<()> {
        enqueue(&self.writes, |tx| WriteCmd::WriteQueueLive(rows, tx))
    }

    /// The live snapshot of one tenant's queues, or of all.
    pub fn queue_live(&self, tenant: Option<TenantId>) -> Reply<Vec<QueueLive>> {
        enqueue(&self.reads, |tx| ReadCmd::ReadQueueLive(tenant, tx))
    }

    /// Per queue, visits (answered, unanswered) since `since_ms`, by the time they were
    /// answered or left: seeds the engine's "today" counters after a restart.
    pub fn queue_today_counts(&self, since_ms: i64) -> Reply<Vec<(QueueId, u32, u32)>> {
        enqueue(&self.reads, |tx| ReadCmd::QueueTodayCounts(since_ms, tx))
    }

    /// Statistics per queue and per operator of a tenant for visits entered in
    /// `[from_ms, to_ms)`, computed from the queue call log.
    pub fn queue_stats(
        &self,
        tenant: TenantId,
        from_ms: i64,
        to_ms: i64,
    ) -> Reply<QueueStatsReport> {
        enqueue(&self.reads, |tx| {
            ReadCmd::QueueStats(tenant, from_ms, to_ms, tx)
        })
    }

    /// Lists queue visits matching `filter`, newest first, with their offers.
    pub fn queue_log(&self, filter: QueueLogFilter) -> Reply<Vec<QueueVisitSummary>> {
        enqueue(&self.reads, |tx| ReadCmd::QueueLog(filter, tx))
    }

    /// Queue history retention: deletes, per tenant, visits older than the tenant's
    /// `queue_retention_days` at `now_ms`; the reply is how many. The runtime runs it
    /// hourly with the call log's retention.
    pub fn delete_queue_history_expired(&self, now_ms: i64) -> Reply<u64> {
        enqueue(&self.writes, |tx| {
            WriteCmd::DeleteQueueHistoryExpired(now_ms, tx)
        })
    }
}

impl StoreHandle {
    // ---- conferences: provisioning ----

    /// Creates a conference room (with its dial-in number, if any) in one transaction;
    /// the PINs are hashed (argon2id) on the writer thread and dropped. Refused with
    /// [`StoreError::Invalid`] naming the field (name, extension, number, PIN or
    /// moderator PIN not 4 to 12 digits or equal, max participants outside 2..=500,
    /// `Field::NumberKind` for a personal number, `Field::Number` for a number leading to
    /// a queue or another room), [`StoreError::Duplicate`] (`Field::ConferenceName` or
    /// `Field::Extension` taken in the tenant, by a room or a user; `Field::Number` owned
    /// by another tenant), [`StoreError::NotFound`] for the tenant or an owner who is not
    /// a user of the tenant.
    pub fn add_room(&self, tenant: TenantId, room: NewRoom) -> Reply<ConferenceRoomId> {
        enqueue(&self.writes, |tx| {
            WriteCmd::AddRoom(tenant, Box::new(room), tx)
        })
    }

    /// Applies changes to a room in one transaction, all or nothing (errors as
    /// [`add_room`](Self::add_room); a new PIN equal to the kept other PIN is refused
    /// too). A replaced or removed number stays with the tenant, leading nowhere.
    pub fn update_room(&self, room: ConferenceRoomId, changes: RoomChanges) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::UpdateRoom(room, Box::new(changes), tx)
        })
    }

    /// Sets (or with `None` removes) a room's PIN or moderator PIN.
    pub fn set_room_pin(
        &self,
        room: ConferenceRoomId,
        role: PinRole,
        pin: Option<RoomPin>,
    ) -> Reply<()> {
        let changes = match role {
            PinRole::Participant => RoomChanges {
                pin: Some(pin),
                ..RoomChanges::default()
            },
            PinRole::Moderator => RoomChanges {
                moderator_pin: Some(pin),
                ..RoomChanges::default()
            },
        };
        self.update_room(room, changes)
    }

    /// Removes a room with its live state and pending commands; its number stays with
    /// the tenant (leading nowhere) and its conference log stays ([`StoreError::NotFound`]
    /// with `Entity::Room` if there is none).
    pub fn remove_room(&self, room: ConferenceRoomId) -> Reply<()> {
        enqueue(&self.writes, |tx| WriteCmd::RemoveRoom(room, tx))
    }

    /// Finds a room of a tenant by name (ASCII case-insensitive).
    pub fn find_room(&self, tenant: TenantId, name: &str) -> Reply<Option<ConferenceRoom>> {
        enqueue(&self.reads, |tx| {
            ReadCmd::FindRoom(tenant, name.to_owned(), tx)
        })
    }

    /// Lists rooms of one tenant, or of all, by tenant name then room name.
    pub fn list_rooms(&self, tenant: Option<TenantId>) -> Reply<Vec<RoomSummary>> {
        enqueue(&self.reads, |tx| ReadCmd::ListRooms(tenant, tx))
    }

    // ---- conferences: the daemon ----

    /// The room an inbound call to an E.164 number reaches, if it leads to one.
    pub fn room_by_number(&self, number: &str) -> Reply<Option<ConferenceRoom>> {
        enqueue(&self.reads, |tx| {
            ReadCmd::RoomByNumber(number.to_owned(), tx)
        })
    }

    /// A tenant's room by extension.
    pub fn room_by_extension(
        &self,
        tenant: TenantId,
        extension: &str,
    ) -> Reply<Option<ConferenceRoom>> {
        enqueue(&self.reads, |tx| {
            ReadCmd::RoomByExtension(tenant, extension.to_owned(), tx)
        })
    }

    /// Which PIN of the room the digits are: `Some(Moderator)`, `Some(Participant)` or
    /// `None` (wrong, or not 4 to 12 digits). Runs argon2 on a reader thread (about 35
    /// ms per stored PIN in a release build), never on the caller's.
    pub fn verify_room_pin(
        &self,
        room: ConferenceRoomId,
        digits: RoomPin,
    ) -> Reply<Option<PinRole>> {
        enqueue(&self.reads, |tx| ReadCmd::VerifyRoomPin(room, digits, tx))
    }

    /// Every room (without PIN hashes: `has_pin`, `has_moderator_pin`), read in one
    /// transaction with the revision it shows.
    pub fn load_rooms(&self) -> Reply<RoomsSnapshot> {
        enqueue(&self.reads, ReadCmd::LoadRooms)
    }

    /// The rooms' revision: changes with every change of a room or of a number leading
    /// to one (SQLite triggers, so the CLI's changes count too). Poll it and reload with
    /// [`load_rooms`](Self::load_rooms) when it changed.
    pub fn conference_config_revision(&self) -> Reply<i64> {
        enqueue(&self.reads, ReadCmd::ConferenceConfigRevision)
    }

    /// Writes a finished conference with its participants in one transaction. Content
    /// never makes it fail (text cleaned and cut; rooms and users removed meanwhile
    /// stored as absent); only a removed tenant does ([`StoreError::NotFound`]). Each
    /// participant is linked to its call log row by SIP Call-ID, whichever of the two
    /// is written first. Kept 30 days with the call log ([`delete_calls_before`]).
    ///
    /// [`delete_calls_before`]: Self::delete_calls_before
    pub fn write_conference(&self, conference: ConferenceRecord) -> Reply<ConferenceId> {
        enqueue(&self.writes, |tx| {
            WriteCmd::WriteConference(Box::new(conference), tx)
        })
    }

    /// Lists conferences matching `filter`, newest first, with their participants.
    pub fn list_conferences(&self, filter: ConferenceLogFilter) -> Reply<Vec<ConferenceSummary>> {
        enqueue(&self.reads, |tx| ReadCmd::ListConferences(filter, tx))
    }

    /// Replaces the live state with `rooms` (the rooms with a conference running) in one
    /// transaction, stamped `updated_at_ms`; call it each second, also with no rooms,
    /// so readers can tell a running daemon. Rooms removed meanwhile are skipped.
    pub fn write_conference_live(
        &self,
        updated_at_ms: i64,
        rooms: Vec<ConferenceLive>,
    ) -> Reply<()> {
        enqueue(&self.writes, |tx| {
            WriteCmd::WriteConferenceLive(updated_at_ms, rooms, tx)
        })
    }

    /// The live state of a tenant's rooms, or of one room, with when it was written.
    pub fn conference_live(
        &self,
        tenant: TenantId,
        room: Option<ConferenceRoomId>,
    ) -> Reply<ConferenceLiveSnapshot> {
        enqueue(&self.reads, |tx| {
            ReadCmd::ReadConferenceLive(tenant, room, tx)
        })
    }

    /// Leaves a control for the running daemon, sent at `now_ms` (Unix ms)
    /// ([`StoreError::NotFound`] with `Entity::Room` if the room is gone).
    pub fn send_conference_command(
        &self,
        room: ConferenceRoomId,
        control: ConferenceControl,
        now_ms: i64,
    ) -> Reply<ConferenceCommandId> {
        enqueue(&self.writes, |tx| {
            WriteCmd::SendConferenceCommand(room, control, now_ms, tx)
        })
    }

    /// Where a command stands (poll it for the daemon's result).
    pub fn conference_command(&self, id: ConferenceCommandId) -> Reply<CommandStatus> {
        enqueue(&self.reads, |tx| ReadCmd::ConferenceCommandStatus(id, tx))
    }

    /// Gives up on a command at `now_ms`: expired (never to be applied) unless the daemon
    /// has taken it already; the reply is where it stands afterwards.
    pub fn expire_conference_command(
        &self,
        id: ConferenceCommandId,
        now_ms: i64,
    ) -> Reply<CommandStatus> {
        enqueue(&self.writes, |tx| {
            WriteCmd::ExpireConferenceCommand(id, now_ms, tx)
        })
    }

    /// The daemon's poll (each second) at `now_ms`: takes and returns the commands sent
    /// in the last [`COMMAND_MAX_AGE_MS`](super::COMMAND_MAX_AGE_MS) that nobody took,
    /// oldest first, and expires older unfinished ones. Apply each, then
    /// [`finish_conference_command`](Self::finish_conference_command).
    pub fn pending_conference_commands(&self, now_ms: i64) -> Reply<Vec<ConferenceCommand>> {
        enqueue(&self.writes, |tx| {
            WriteCmd::PendingConferenceCommands(now_ms, tx)
        })
    }

    /// Records a command's result at `now_ms`; the reply is false if it was finished
    /// already (expired) or is gone with its room.
    pub fn finish_conference_command(
        &self,
        id: ConferenceCommandId,
        result: CommandResult,
        now_ms: i64,
    ) -> Reply<bool> {
        enqueue(&self.writes, |tx| {
            WriteCmd::FinishConferenceCommand(id, result, now_ms, tx)
        })
    }

    /// Asks the running daemon, at `now_ms` (Unix ms), to merge `user`'s two answered
    /// calls into one ad-hoc conference ([`StoreError::NotFound`] with `Entity::Tenant`,
    /// or `Entity::User` if the tenant has no such user).
    pub fn send_merge_command(
        &self,
        tenant: TenantId,
        user: UserId,
        now_ms: i64,
    ) -> Reply<CallCommandId> {
        enqueue(&self.writes, |tx| {
            WriteCmd::SendCallCommand(tenant, user, CallAction::Merge, now_ms, tx)
        })
    }

    /// Where a call command stands (poll it for the daemon's result).
    pub fn call_command(&self, id: CallCommandId) -> Reply<CallCommandStatus> {
        enqueue(&self.reads, |tx| ReadCmd::CallCommandStatus(id, tx))
    }

    /// Gives up on a call command at `now_ms`: expired (never to be applied) unless the
    /// daemon has taken it already; the reply is where it stands afterwards.
    pub fn expire_call_command(&self, id: CallCommandId, now_ms: i64) -> Reply<CallCommandStatus> {
        enqueue(&self.writes, |tx| {
            WriteCmd::ExpireCallCommand(id, now_ms, tx)
        })
    }

    /// The daemon's poll (each second) at `now_ms`: takes and returns the call commands
    /// sent in the last [`COMMAND_MAX_AGE_MS`](super::COMMAND_MAX_AGE_MS) that nobody
    /// took, oldest first, and expires older unfinished ones. Apply each, then
    /// [`finish_call_command`](Self::finish_call_command).
    pub fn pending_call_commands(&self, now_ms: i64) -> Reply<Vec<CallCommand>> {
        enqueue(&self.writes, |tx| WriteCmd::PendingCallCommands(now_ms, tx))
    }

    /// Records a call command's result at `now_ms`; the reply is false if it was
    /// finished already (expired) or is gone with its user.
    pub fn finish_call_command(
        &self,
        id: CallCommandId,
        result: CallCommandResult,
        now_ms: i64,
    ) -> Reply<bool> {
        enqueue(&self.writes, |tx| {
            WriteCmd::FinishCallCommand(id, result, now_ms, tx)
        })
    }
}

/// The owner of the store's threads. Hand out [`StoreHandle`]s with [`Store::handle`];
/// [`Store::close`] (or drop) applies every queued write and joins the threads.
#[derive(Debug)]
pub struct Store {
    handle: StoreHandle,
    path: PathBuf,
    readers: usize,
    writer: Option<JoinHandle<()>>,
    reader_threads: Vec<JoinHandle<()>>,
}

impl Store {
    /// Opens (creating the file and its directories if needed) and migrates the
    /// database, then starts the threads. Blocking: call it before entering the async
    /// runtime or from `spawn_blocking`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Like [`Store::open`] with explicit options.
    pub fn open_with(path: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        create_private(path)?;
        let mut writer_conn = schema::open_writer(path, opts.busy_timeout)?;
        let from = schema::migrate(&mut writer_conn)?;
        if from != schema::latest_version() {
            tracing::info!(
                from,
                to = schema::latest_version(),
                "store: migrated database schema"
            );
        }
        let readers = opts.readers.max(1);
        // Open every connection before starting any thread, so a failure leaves
        // nothing running.
        let reader_conns = (0..readers)
            .map(|_| schema::open_reader(path, opts.busy_timeout))
            .collect::<Result<Vec<_>, _>>()?;

        let (wtx, wrx) = sync_channel(opts.write_queue.max(1));
        let (rtx, rrx) = sync_channel(opts.read_queue.max(1));
        let rrx = Arc::new(Mutex::new(rrx));

        let mut store = Store {
            handle: StoreHandle {
                writes: wtx,
                reads: rtx,
            },
            path: path.to_path_buf(),
            readers: 0,
            writer: None,
            reader_threads: Vec::with_capacity(readers),
        };
        // If a spawn fails, dropping `store` shuts down what was started.
        store.writer = Some(
            std::thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || writer_loop(writer_conn, wrx))
                .map_err(StoreError::Spawn)?,
        );
        for (i, conn) in reader_conns.into_iter().enumerate() {
            let rx = Arc::clone(&rrx);
            let t = std::thread::Builder::new()
                .name(format!("store-reader-{i}"))
                .spawn(move || reader_loop(conn, rx))
                .map_err(StoreError::Spawn)?;
            store.reader_threads.push(t);
            store.readers += 1;
        }
        Ok(store)
    }

    /// A new handle for sending commands.
    pub fn handle(&self) -> StoreHandle {
        self.handle.clone()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies every command queued so far, stops the threads and joins them. Commands
    /// sent afterwards through surviving handles fail with [`StoreError::Closed`].
    pub fn close(mut self) -> Result<(), StoreError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), StoreError> {
        let mut result = Ok(());
        // Readers first, so the writer's connection closes last: the last connection to
        // close checkpoints and removes the WAL, which a read-only one cannot do.
        // Blocking sends: a marker must get in even when a queue is full; the threads
        // are draining it, so this waits at most for the queued work. A send error
        // means the thread is gone already; joining tells why.
        for _ in 0..self.readers {
            let _ = self.handle.reads.send(ReadCmd::Shutdown);
        }
        self.readers = 0;
        for t in self.reader_threads.drain(..) {
            if t.join().is_err() {
                result = Err(StoreError::ThreadPanicked);
            }
        }
        if let Some(writer) = self.writer.take() {
            let _ = self.handle.writes.send(WriteCmd::Shutdown);
            if writer.join().is_err() {
                result = Err(StoreError::ThreadPanicked);
            }
        }
        result
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "store: unclean shutdown");
        }
    }
}

/// Creates the database file readable by its owner only (it holds password hashes);
/// SQLite gives the `-wal` and `-shm` files the same permissions. An existing file is
/// left as it is, with a warning if others can read it.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            if let Ok(meta) = std::fs::metadata(path) {
                let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        mode = format_args!("{:o}", mode & 0o777),
                        "store: database file holding password hashes is accessible to others"
                    );
                }
            }
            Ok(())
        }
        Err(source) => Err(StoreError::CreateFile {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Sends a result to whoever waits; a dropped receiver just means nobody asked.
fn answer<T>(tx: Tx<T>, r: Result<T, StoreError>) {
    let _ = tx.send(r);
}

/// Most call records committed in one transaction (see [`write_call_batch`]).
const MAX_CALL_BATCH: usize = 256;

fn writer_loop(mut conn: Connection, rx: Receiver<WriteCmd>) {
    // A command taken from the queue while gathering a batch of calls, to run next.
    let mut next: Option<WriteCmd> = None;
    loop {
        // `recv` fails only when every sender is gone, which also means nothing is queued.
        let cmd = match next.take() {
            Some(cmd) => cmd,
            None => match rx.recv() {
                Ok(cmd) => cmd,
                Err(_) => break,
            },
        };
        match cmd {
            WriteCmd::WriteCall(call, tx) => {
                // Group commit: the call ends already queued behind this one share its
                // transaction. Only what is queued now is taken (never waits), and the
                // first other command stops the batch and runs right after it, so
                // commands still apply in queue order.
                let mut batch = vec![(call, tx)];
                while batch.len() < MAX_CALL_BATCH {
                    match rx.try_recv() {
                        Ok(WriteCmd::WriteCall(call, tx)) => batch.push((call, tx)),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                write_call_batch(&mut conn, batch);
            }
            WriteCmd::AddTenant(name, tx) => answer(tx, repo::add_tenant(&conn, &name)),
            WriteCmd::RemoveTenant(id, force, tx) => {
                answer(tx, repo::remove_tenant(&mut conn, id, force))
            }
            WriteCmd::AddTenantNumber(t, n, k, u, tx) => {
                answer(tx, repo::add_tenant_number(&conn, t, &n, k, u))
            }
            WriteCmd::AssignTenantNumber(t, n, u, tx) => {
                answer(tx, repo::assign_tenant_number(&conn, t, &n, u))
            }
            WriteCmd::RemoveTenantNumber(t, n, tx) => {
                answer(tx, repo::remove_tenant_number(&conn, t, &n))
            }
            WriteCmd::AddUser(u, tx) => answer(tx, repo::add_user(&conn, &u)),
            WriteCmd::RemoveUser(id, tx) => answer(tx, repo::remove_user(&conn, id)),
            WriteCmd::SetUserPassword(id, pw, tx) => {
                answer(tx, repo::set_user_password(&mut conn, id, &pw))
            }
            WriteCmd::SetUserSettings(id, s, tx) => {
                answer(tx, settings::set_user_settings(&mut conn, id, &s))
            }
            WriteCmd::UpsertBinding(b, tx) => answer(tx, repo::upsert_binding(&conn, &b)),
            WriteCmd::RemoveBinding(aor, contact, tx) => {
                answer(tx, repo::remove_binding(&conn, &aor, &contact))
            }
            WriteCmd::RemoveAllBindings(aor, tx) => {
                answer(tx, repo::remove_all_bindings(&conn, &aor))
            }
            WriteCmd::LoadBindings(now, tx) => answer(tx, repo::load_bindings(&mut conn, now)),
            WriteCmd::LoadOrCreateSecret(name, candidate, tx) => {
                answer(tx, repo::load_or_create_secret(&conn, &name, candidate))
            }
            WriteCmd::AddContact(c, tx) => answer(tx, directory::add_contact(&conn, &c)),
            WriteCmd::ImportContacts(t, text, tx) => {
                answer(tx, directory::import_contacts_csv(&mut conn, t, &text))
            }
            WriteCmd::RemoveContact(t, n, tx) => {
                answer(tx, directory::remove_contact(&conn, t, &n))
            }
            WriteCmd::CachePut(e, tx) => answer(tx, directory::cache_put(&conn, &e)),
            WriteCmd::CachePurge(now, tx) => answer(tx, directory::cache_purge(&conn, now)),
            WriteCmd::DeleteCallsBefore(cutoff, tx) => {
                answer(tx, calllog::delete_calls_before(&mut conn, cutoff))
            }
            WriteCmd::AddQueue(t, def, tx) => answer(tx, queues::add_queue(&mut conn, t, &def)),
            WriteCmd::UpdateQueue(q, def, tx) => {
                answer(tx, queues::update_queue(&mut conn, q, &def))
            }
            WriteCmd::RemoveQueue(q, force, tx) => {
                answer(tx, queues::remove_queue(&mut conn, q, force))
            }
            WriteCmd::AddQueueMember(q, u, pos, ring, tx) => {
                answer(tx, queues::add_member(&mut conn, q, u, pos, ring))
            }
            WriteCmd::RemoveQueueMember(q, u, tx) => answer(tx, queues::remove_member(&conn, q, u)),
            WriteCmd::SetOverflowRule(q, rule, tx) => {
                answer(tx, queues::set_overflow_rule(&mut conn, q, &rule))
            }
            WriteCmd::ClearOverflowRule(q, c, tx) => {
                answer(tx, queues::clear_overflow_rule(&conn, q, c))
            }
            WriteCmd::SetQueueHours(q, hours, tx) => {
                answer(tx, queues::set_weekly_hours(&mut conn, q, &hours))
            }
            WriteCmd::AddQueueHoliday(q, h, tx) => {
                answer(tx, queues::add_holiday(&mut conn, q, &h))
            }
            WriteCmd::RemoveQueueHoliday(q, d, tx) => {
                answer(tx, queues::remove_holiday(&conn, q, d))
            }
            WriteCmd::AssignQueueNumber(t, n, q, tx) => {
                answer(tx, queues::assign_queue_number(&mut conn, t, &n, q))
            }
            WriteCmd::AddQueueNumber(t, n, k, q, tx) => {
                answer(tx, queues::add_queue_number(&mut conn, t, &n, k, q))
            }
            WriteCmd::AddVip(t, n, note, tx) => {
                answer(tx, queues::add_vip(&conn, t, &n, note.as_deref()))
            }
            WriteCmd::RemoveVip(t, n, tx) => answer(tx, queues::remove_vip(&conn, t, &n)),
            WriteCmd::SetTenantSettings(t, s, tx) => {
                answer(tx, queues::set_tenant_settings(&conn, t, &s))
            }
            WriteCmd::SetAgentPresence(u, p, at, tx) => {
                answer(tx, queues::set_agent_presence(&conn, u, &p, at))
            }
            WriteCmd::WriteQueueLive(rows, tx) => {
                answer(tx, queuelog::write_queue_live(&mut conn, &rows))
            }
            WriteCmd::DeleteQueueHistoryExpired(now, tx) => {
                answer(tx, queuelog::delete_queue_history_expired(&mut conn, now))
            }
            WriteCmd::AddRoom(t, room, tx) => answer(tx, conference::add_room(&mut conn, t, &room)),
            WriteCmd::UpdateRoom(r, changes, tx) => {
                answer(tx, conference::update_room(&mut conn, r, &changes))
            }
            WriteCmd::RemoveRoom(r, tx) => answer(tx, conference::remove_room(&conn, r)),
            WriteCmd::WriteConference(c, tx) => {
                answer(tx, conference::write_conference(&mut conn, &c))
            }
            WriteCmd::WriteConferenceLive(at, rooms, tx) => {
                answer(tx, conference::write_conference_live(&mut conn, at, &rooms))
            }
            WriteCmd::SendConferenceCommand(r, control, now, tx) => answer(
                tx,
                conference::send_conference_command(&conn, r, control, now),
            ),
            WriteCmd::ExpireConferenceCommand(id, now, tx) => {
                answer(tx, conference::expire_conference_command(&conn, id, now))
            }
            WriteCmd::PendingConferenceCommands(now, tx) => {
                answer(tx, conference::pending_conference_commands(&mut conn, now))
            }
            WriteCmd::FinishConferenceCommand(id, result, now, tx) => answer(
                tx,
                conference::finish_conference_command(&conn, id, result, now),
            ),
            WriteCmd::SendCallCommand(t, u, action, now, tx) => answer(
                tx,
                call_commands::send_call_command(&conn, t, u, action, now),
            ),
            WriteCmd::ExpireCallCommand(id, now, tx) => {
                answer(tx, call_commands::expire_call_command(&conn, id, now))
            }
            WriteCmd::PendingCallCommands(now, tx) => {
                answer(tx, call_commands::pending_call_commands(&mut conn, now))
            }
            WriteCmd::FinishCallCommand(id, result, now, tx) => answer(
                tx,
                call_commands::finish_call_command(&conn, id, result, now),
            ),
            WriteCmd::Shutdown => break,
        }
    }
    // Checkpoint so the next start does not replay a long WAL; failure is harmless
    // (SQLite checkpoints on its own), so it is only logged.
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!(error = %e, "store: WAL checkpoint at shutdown failed");
    }
}

/// Writes queued call records in one transaction; if that transaction cannot be
/// begun or committed, writes them one by one so each gets its own result (an error
/// cannot be shared between waiters).
fn write_call_batch(conn: &mut Connection, batch: Vec<(Box<CallRecord>, Tx<CallId>)>) {
    if let [_] = batch.as_slice() {
        for (call, tx) in batch {
            answer(tx, calllog::write_call(conn, &call));
        }
        return;
    }
    let calls: Vec<&CallRecord> = batch.iter().map(|(c, _)| c.as_ref()).collect();
    match calllog::write_calls(conn, &calls) {
        Ok(results) => {
            for ((_, tx), r) in batch.into_iter().zip(results) {
                answer(tx, r);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, calls = batch.len(), "store: call batch failed; writing one by one");
            for (call, tx) in batch {
                answer(tx, calllog::write_call(conn, &call));
            }
        }
    }
}

fn reader_loop(conn: Connection, rx: Arc<Mutex<Receiver<ReadCmd>>>) {
    loop {
        // Hold the lock only to take one command, so readers work in parallel.
        let cmd = {
            let Ok(guard) = rx.lock() else {
                // Another reader panicked holding the lock; stop rather than spin.
                return;
            };
            match guard.recv() {
                Ok(cmd) => cmd,
                Err(_) => return,
            }
        };
        match cmd {
            ReadCmd::FindTenant(name, tx) => answer(tx, repo::find_tenant(&conn, &name)),
            ReadCmd::ListTenants(tx) => answer(tx, repo::list_tenants(&conn)),
            ReadCmd::ListTenantNumbers(t, tx) => answer(tx, repo::list_tenant_numbers(&conn, t)),
            ReadCmd::LookupNumber(n, tx) => answer(tx, repo::lookup_number(&conn, &n)),
            ReadCmd::RouteNumber(n, tx) => answer(tx, repo::route_number(&conn, &n)),
            ReadCmd::PresentableNumbers(u, tx) => answer(tx, repo::presentable_numbers(&conn, u)),
            ReadCmd::ListUsers(t, tx) => answer(tx, repo::list_users(&conn, t)),
            ReadCmd::FindUser(t, ext, tx) => answer(tx, repo::find_user(&conn, t, &ext)),
            ReadCmd::FindUserById(id, tx) => answer(tx, repo::find_user_by_id(&conn, id)),
            ReadCmd::UserSettings(id, tx) => answer(tx, settings::user_settings(&conn, id)),
            ReadCmd::LookupUserByMobile(m, tx) => {
                answer(tx, repo::lookup_user_by_mobile(&conn, &m))
            }
            ReadCmd::LookupSipUser(realm, user, tx) => {
                answer(tx, repo::lookup_sip_user(&conn, &realm, &user))
            }
            ReadCmd::ListContacts(t, tx) => answer(tx, directory::list_contacts(&conn, t)),
            ReadCmd::LookupLocalName(t, n, tx) => {
                answer(tx, directory::lookup_local_name(&conn, t, &n))
            }
            ReadCmd::CacheGet(n, now, tx) => answer(tx, directory::cache_get(&conn, &n, now)),
            ReadCmd::ListCalls(f, tx) => answer(tx, calllog::list_calls(&conn, &f)),
            ReadCmd::CallLegs(id, tx) => answer(tx, calllog::call_legs(&conn, id)),
            ReadCmd::CallMedia(id, tx) => answer(tx, calllog::call_media(&conn, id)),
            ReadCmd::FindQueue(t, name, tx) => answer(tx, queues::find_queue(&conn, t, &name)),
            ReadCmd::ListQueues(t, tx) => answer(tx, queues::list_queues(&conn, t)),
            ReadCmd::QueueDetailsOf(q, tx) => answer(tx, queues::queue_details(&conn, q)),
            ReadCmd::ListQueueMembers(q, tx) => answer(tx, queues::list_members(&conn, q)),
            ReadCmd::ListVips(t, tx) => answer(tx, queues::list_vips(&conn, t)),
            ReadCmd::AgentPresenceOf(u, tx) => answer(tx, queues::agent_presence(&conn, u)),
            ReadCmd::LoadQueueConfig(tx) => answer(tx, queues::load_queue_config(&conn)),
            ReadCmd::QueueConfigRevision(tx) => answer(tx, queues::queue_config_revision(&conn)),
            ReadCmd::ReadQueueLive(t, tx) => answer(tx, queuelog::queue_live(&conn, t)),
            ReadCmd::QueueTodayCounts(since, tx) => {
                answer(tx, queuelog::queue_today_counts(&conn, since))
            }
            ReadCmd::QueueStats(t, from, to, tx) => {
                answer(tx, queuelog::queue_stats(&conn, t, from, to))
            }
            ReadCmd::QueueLog(f, tx) => answer(tx, queuelog::queue_log(&conn, &f)),
            ReadCmd::FindRoom(t, name, tx) => answer(tx, conference::find_room(&conn, t, &name)),
            ReadCmd::ListRooms(t, tx) => answer(tx, conference::list_rooms(&conn, t)),
            ReadCmd::RoomByNumber(n, tx) => answer(tx, conference::room_by_number(&conn, &n)),
            ReadCmd::RoomByExtension(t, ext, tx) => {
                answer(tx, conference::room_by_extension(&conn, t, &ext))
            }
            ReadCmd::VerifyRoomPin(r, pin, tx) => {
                answer(tx, conference::verify_room_pin(&conn, r, &pin))
            }
            ReadCmd::LoadRooms(tx) => answer(tx, conference::load_rooms(&conn)),
            ReadCmd::ConferenceConfigRevision(tx) => {
                answer(tx, conference::conference_config_revision(&conn))
            }
            ReadCmd::ListConferences(f, tx) => answer(tx, conference::list_conferences(&conn, &f)),
            ReadCmd::ReadConferenceLive(t, r, tx) => {
                answer(tx, conference::conference_live(&conn, t, r))
            }
            ReadCmd::ConferenceCommandStatus(id, tx) => {
                answer(tx, conference::conference_command(&conn, id))
            }
            ReadCmd::CallCommandStatus(id, tx) => {
                answer(tx, call_commands::call_command(&conn, id))
            }
            ReadCmd::Shutdown => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Entity, Field};

    fn user(tenant: TenantId, ext: &str) -> NewUser {
        NewUser {
            tenant,
            name: format!("User {ext}"),
            extension: ext.into(),
            mobile: None,
            sip_username: format!("u{ext}"),
            realm: "sip.example.no".into(),
            password: Password::new("hunter2hunter2"),
        }
    }

    #[test]
    fn secret_is_created_once_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let store = Store::open(&path).expect("open");
        let first = store
            .handle()
            .load_or_create_secret("nonce", [1; 32])
            .wait()
            .expect("secret");
        assert_eq!(first, [1; 32]);
        let again = store
            .handle()
            .load_or_create_secret("nonce", [2; 32])
            .wait()
            .expect("secret");
        assert_eq!(again, [1; 32], "an existing secret is never replaced");
        store.close().expect("close");
        let store = Store::open(&path).expect("reopen");
        let after = store
            .handle()
            .load_or_create_secret("nonce", [3; 32])
            .wait()
            .expect("secret");
        assert_eq!(after, [1; 32]);
    }

    #[test]
    fn blocking_roundtrip_and_create_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("deep").join("er").join("store.db");
        let store = Store::open(&path).expect("open");
        assert!(path.exists());
        let h = store.handle();
        let t = h.add_tenant("Acme").wait().expect("tenant");
        h.add_tenant_number(t, "+4721000000", NumberKind::Main, None)
            .wait()
            .expect("number");
        let u = h.add_user(user(t, "10")).wait().expect("user");
        // A read queued after a completed write sees it (WAL, committed).
        let c = h
            .lookup_sip_user("sip.example.no", "u10")
            .wait()
            .expect("lookup")
            .expect("found");
        assert_eq!((c.user_id, c.tenant_id), (u, t));
        assert_eq!(
            h.lookup_number("+4721000000").wait().expect("lookup"),
            Some(TenantNumber {
                number: "+4721000000".into(),
                tenant_id: t,
                kind: NumberKind::Main,
                user_id: None,
                queue_id: None,
                conference_id: None,
            })
        );
        let mut dup = user(t, "10");
        dup.sip_username = "someone-else".into();
        assert!(matches!(
            h.add_user(dup).wait(),
            Err(StoreError::Duplicate {
                field: Field::Extension
            })
        ));
        store.close().expect("close");
        // After close, surviving handles fail cleanly.
        assert!(matches!(h.list_tenants().wait(), Err(StoreError::Closed)));
        assert!(matches!(h.add_tenant("x").wait(), Err(StoreError::Closed)));
    }

    #[test]
    fn async_roundtrip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("s.db")).expect("open");
        let h = store.handle();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let t = h.add_tenant("Acme").await.expect("tenant");
            let u = h.add_user(user(t, "10")).await.expect("user");
            h.upsert_binding(Binding {
                user_id: u,
                aor: "sip:u10@sip.example.no".into(),
                contact: "sip:u10@192.0.2.1:5060".into(),
                contact_params: String::new(),
                expires_at: 2000,
                q: Some(0.5),
                call_id: "abc".into(),
                cseq: 7,
                source: "udp:192.0.2.1:5060".into(),
                instance: None,
                reg_id: None,
                path: None,
                user_agent: None,
                updated_at: 1000,
            })
            .await
            .expect("bind");
            assert_eq!(h.load_bindings(1999).await.expect("load").len(), 1);
            assert_eq!(h.load_bindings(2000).await.expect("load").len(), 0);
            let users = h.list_users(Some(t)).await.expect("users");
            assert_eq!(users.len(), 1);
            assert!(matches!(
                h.remove_user(UserId(999)).await,
                Err(StoreError::NotFound(Entity::User))
            ));
        });
        drop(store);
    }

    #[test]
    fn user_settings_through_the_handle() {
        use crate::store::{Presentation, UserSettings};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("settings.db")).expect("open");
        let h = store.handle();
        let t = h.add_tenant("Acme").wait().expect("tenant");
        let mut nu = user(t, "10");
        nu.mobile = Some("+4790000010".into());
        let u = h.add_user(nu).wait().expect("user");
        let found = h.find_user_by_id(u).wait().expect("by id").expect("exists");
        assert_eq!(
            (found.extension.as_str(), found.mobile.as_deref()),
            ("10", Some("+4790000010"))
        );
        assert_eq!(h.find_user_by_id(UserId(999)).wait().expect("by id"), None);
        assert_eq!(
            h.user_settings(u).wait().expect("defaults"),
            UserSettings::default()
        );
        let s = UserSettings {
            forward_busy: Some("+4791234567".into()),
            present: Presentation::Main,
            ..UserSettings::default()
        };
        // A read queued after a write (not awaited) still sees it once the write is done.
        let write = h.set_user_settings(u, s.clone());
        write.wait().expect("set");
        assert_eq!(h.user_settings(u).wait().expect("read"), s);
        assert!(matches!(
            h.set_user_settings(
                u,
                UserSettings {
                    forward_always: Some("10".into()),
                    ..UserSettings::default()
                }
            )
            .wait(),
            Err(StoreError::Invalid {
                field: Field::ForwardAlways,
                ..
            })
        ));
        assert!(matches!(
            h.user_settings(UserId(999)).wait(),
            Err(StoreError::NotFound(Entity::User))
        ));
        store.close().expect("close");
    }

    #[test]
    fn close_drains_queued_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("drain.db");
        let store = Store::open(&path).expect("open");
        let h = store.handle();
        let t = h.add_tenant("Acme").wait().expect("tenant");
        let mut replies = Vec::new();
        for i in 0..500 {
            // Fire-and-forget writes: none are awaited before close.
            replies.push(h.add_user(user(t, &format!("{}", 1000 + i))));
        }
        store.close().expect("close");
        // Every reply resolves: the writes ran before the thread stopped.
        for r in replies {
            r.wait().expect("queued write applied");
        }
        let store = Store::open(&path).expect("reopen");
        let users = store.handle().list_users(Some(t)).wait().expect("list");
        assert_eq!(users.len(), 500);
        drop(store);
    }

    #[test]
    fn drop_also_drains() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("drop.db");
        let store = Store::open(&path).expect("open");
        let h = store.handle();
        for i in 0..100 {
            drop(h.add_tenant(&format!("tenant {i}")));
        }
        drop(store);
        let store = Store::open(&path).expect("reopen");
        assert_eq!(
            store.handle().list_tenants().wait().expect("list").len(),
            100
        );
    }

    #[test]
    fn full_queue_fails_fast() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_with(
            &dir.path().join("q.db"),
            StoreOptions {
                write_queue: 1,
                ..StoreOptions::default()
            },
        )
        .expect("open");
        let h = store.handle();
        // Queue far more than capacity without waiting: some must be refused at once,
        // and every accepted one must still be applied.
        let replies: Vec<_> = (0..2000).map(|i| h.add_tenant(&format!("t{i}"))).collect();
        let mut ok = 0;
        let mut full = 0;
        for r in replies {
            match r.wait() {
                Ok(_) => ok += 1,
                Err(StoreError::QueueFull) => full += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(full > 0, "a 1-slot queue cannot take 2000 commands at once");
        assert_eq!(h.list_tenants().wait().expect("list").len(), ok);
        store.close().expect("close");
    }

    fn call_record(tenant: TenantId, user: UserId, i: i64) -> crate::store::CallRecord {
        use crate::store::model::MediaLegKind;
        use crate::store::{CallOutcome, CallUserRole, Direction, LegKind, LegRecord};
        let stats = |leg, lost: i64| MediaStatsRecord {
            leg,
            codec: Some("PCMA".into()),
            packets_received: 1_500,
            packets_sent: 1_500,
            packets_lost: lost.unsigned_abs(),
            jitter_ms: 2.5,
            bytes_received: 240_000,
        };
        let started = 1_700_000_000_000 + i;
        crate::store::CallRecord {
            tenant: Some(tenant),
            direction: Direction::Inbound,
            caller_number: format!("+47900{i:05}"),
            caller_name: None,
            callee_number: "+4721000010".into(),
            callee_name: Some("User 10".into()),
            started_at_ms: started,
            answered_at_ms: Some(started + 1_000),
            ended_at_ms: started + 31_000,
            outcome: CallOutcome::Answered,
            answered_by: Some(user),
            forward_reason: None,
            end_reason: Some("callee-bye".into()),
            sip_call_ids: vec![format!("in-{i}@carrier"), format!("out-{i}@sb")],
            users: vec![(user, CallUserRole::Callee)],
            legs: vec![
                LegRecord {
                    user: None,
                    kind: LegKind::Inbound,
                    target: "sip:+4721000010@192.0.2.1".into(),
                    sip_call_id: format!("in-{i}@carrier"),
                    started_at_ms: started,
                    answered_at_ms: Some(started + 1_000),
                    ended_at_ms: started + 31_000,
                    outcome: CallOutcome::Answered,
                    status_code: Some(200),
                },
                LegRecord {
                    user: Some(user),
                    kind: LegKind::Phone,
                    target: "sip:u10@192.0.2.10:5060".into(),
                    sip_call_id: format!("out-{i}@sb"),
                    started_at_ms: started + 10,
                    answered_at_ms: Some(started + 1_000),
                    ended_at_ms: started + 31_000,
                    outcome: CallOutcome::Answered,
                    status_code: Some(200),
                },
            ],
            media: vec![
                stats(MediaLegKind::Caller, i),
                stats(MediaLegKind::Callee, 0),
            ],
            queue_visits: vec![],
        }
    }

    #[test]
    fn burst_of_call_writes_survives_close() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("calls.db");
        let store = Store::open(&path).expect("open");
        let h = store.handle();
        let t = h.add_tenant("Acme").wait().expect("tenant");
        let u = h.add_user(user(t, "10")).wait().expect("user");
        // 1,000 call ends queued without waiting (the default queue holds 1,024), then
        // a clean shutdown: every one must be on disk.
        let replies: Vec<_> = (0..1000)
            .map(|i| h.write_call(call_record(t, u, i)))
            .collect();
        store.close().expect("close");
        let mut ids = std::collections::HashSet::new();
        for r in replies {
            ids.insert(r.wait().expect("queued call written"));
        }
        assert_eq!(ids.len(), 1000);
        let store = Store::open(&path).expect("reopen");
        let h = store.handle();
        let calls = h
            .list_calls(crate::store::CallFilter {
                tenant: Some(t),
                user: Some(u),
                since_ms: None,
                limit: 5000,
            })
            .wait()
            .expect("list");
        assert_eq!(calls.len(), 1000);
        assert_eq!(calls[0].caller_number, "+4790000999", "newest first");
        let legs = h.call_legs(calls[0].id).wait().expect("legs");
        assert_eq!(legs, call_record(t, u, 999).legs);
        // The media went in with each call of the batches, and lists with it.
        for c in &calls {
            let i: i64 = c.caller_number["+47900".len()..].parse().expect("index");
            assert_eq!(c.media, call_record(t, u, i).media, "media of call {i}");
        }
        let media = h.call_media(calls[0].id).wait().expect("media");
        assert_eq!(media, call_record(t, u, 999).media);
        store.close().expect("close");
    }

    #[test]
    fn batched_call_writes_keep_queue_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("order.db")).expect("open");
        let h = store.handle();
        let t = h.add_tenant("Acme").wait().expect("tenant");
        let u = h.add_user(user(t, "10")).wait().expect("user");
        for round in 0..20 {
            // Calls, then a retention sweep, then more calls, all queued at once: the
            // sweep must see exactly the calls queued before it, none after.
            let before: Vec<_> = (0..50)
                .map(|i| h.write_call(call_record(t, u, i)))
                .collect();
            let sweep = h.delete_calls_before(i64::MAX);
            let after: Vec<_> = (0..30)
                .map(|i| h.write_call(call_record(t, u, i)))
                .collect();
            for r in before.into_iter().chain(after) {
                r.wait().expect("written");
            }
            assert_eq!(
                sweep.wait().expect("sweep"),
                if round == 0 { 50 } else { 80 }
            );
        }
        store.close().expect("close");
    }

    #[test]
    fn directory_cache_and_call_log_through_the_handle() {
        use crate::store::{CachedLookup, NewContact, Source};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("h.db")).expect("open");
        let h = store.handle();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let t = h.add_tenant("Acme").await.expect("tenant");
            let u = h.add_user(user(t, "10")).await.expect("user");
            h.add_contact(NewContact {
                tenant: t,
                number: "+4790000001".into(),
                first_name: Some("Kari".into()),
                last_name: None,
                company: None,
                department: None,
                note: None,
            })
            .await
            .expect("contact");
            let report = h
                .import_contacts_csv(
                    t,
                    "number,company
+4722000000,Posten
bad,X
"
                    .into(),
                )
                .await
                .expect("import");
            assert_eq!((report.added, report.rejected.len()), (1, 1));
            assert_eq!(h.list_contacts(t).await.expect("list").len(), 2);
            let name = h
                .lookup_local_name(t, "+4722000000")
                .await
                .expect("lookup")
                .expect("found");
            assert_eq!(
                (name.name.as_str(), name.source),
                ("Posten", Source::Contact)
            );
            h.remove_contact(t, "+4722000000").await.expect("remove");
            assert_eq!(
                h.lookup_local_name(t, "+4722000000").await.expect("lookup"),
                None
            );

            h.cache_put("+4791234567", Some("Ola"), None, true, 1_000, 3_600)
                .await
                .expect("put");
            assert_eq!(
                h.cache_get("+4791234567", 1_000).await.expect("get"),
                Some(CachedLookup {
                    name: Some("Ola".into()),
                    address: None,
                    found: true
                })
            );
            assert_eq!(h.cache_get("+4791234567", 4_600).await.expect("get"), None);
            assert_eq!(h.cache_purge(4_600).await.expect("purge"), 1);

            let id = h.write_call(call_record(t, u, 1)).await.expect("write");
            assert_eq!(h.call_legs(id).await.expect("legs").len(), 2);
            assert_eq!(h.call_media(id).await.expect("media").len(), 2);
            assert_eq!(
                h.delete_calls_before(1_700_000_000_002)
                    .await
                    .expect("retention"),
                1
            );
            assert!(matches!(
                h.call_legs(id).await,
                Err(StoreError::NotFound(Entity::Call))
            ));
            assert!(matches!(
                h.call_media(id).await,
                Err(StoreError::NotFound(Entity::Call))
            ));
        });
        store.close().expect("close");
    }

    #[test]
    fn queues_and_their_log_through_the_handle() {
        use crate::store::{
            AgentPresence, OfferRecord, OfferResult, QueueDefinition, QueueKind, QueueLogFilter,
            QueueSettings, QueueVisitRecord, VisitOutcome,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("q.db")).expect("open");
        let h = store.handle();
        let t = h.add_tenant("Acme").wait().expect("tenant");
        let u = h.add_user(user(t, "10")).wait().expect("user");
        let r0 = h.queue_config_revision().wait().expect("revision");
        let q = h
            .add_queue(
                t,
                QueueDefinition {
                    name: "Support".into(),
                    settings: QueueSettings::defaults(QueueKind::Queue),
                    numbers: vec!["+4721000000".into()],
                },
            )
            .wait()
            .expect("queue");
        assert!(h.add_queue_member(q, u, None, None).wait().expect("member"));
        h.set_agent_presence(u, AgentPresence::LoggedIn, 7)
            .wait()
            .expect("presence");
        let snap = h.load_queue_config().wait().expect("config");
        assert!(snap.revision > r0);
        assert_eq!(
            snap.revision,
            h.queue_config_revision().wait().expect("revision")
        );
        assert_eq!(snap.queues.len(), 1);
        assert_eq!(snap.queues[0].members[0].user_id, u);
        assert_eq!(snap.queues[0].numbers, ["+4721000000"]);
        assert_eq!(snap.agents[0].presence, AgentPresence::LoggedIn);

        // 300 call ends queued at once go through the batch path (several batches):
        // each call's visit and offer go with it, and a callback in the same burst marks
        // the missed visits queued before it.
        let visit = |i: i64, outcome| QueueVisitRecord {
            queue: q,
            queue_name: "Support".into(),
            vip: false,
            entered_at_ms: 1_000 * i,
            answered_at_ms: None,
            answered_by: None,
            left_at_ms: 1_000 * i + 500,
            talk_ms: 0,
            outcome,
            overflow_reason: None,
            overflow_target: None,
            transferred_to: None,
            offers: vec![OfferRecord {
                user: u,
                offered_at_ms: 1_000 * i + 100,
                result: OfferResult::NoAnswer,
            }],
        };
        let mut replies = Vec::new();
        for i in 0..300 {
            let mut c = call_record(t, u, i);
            c.caller_number = "+4790000001".into();
            c.answered_at_ms = None;
            c.answered_by = None;
            c.outcome = crate::store::CallOutcome::Missed;
            c.started_at_ms = 1_000 * i;
            c.queue_visits = vec![visit(i, VisitOutcome::Abandoned)];
            replies.push(h.write_call(c));
        }
        let mut callback = call_record(t, u, 1_000);
        callback.direction = crate::store::Direction::Outbound;
        callback.callee_number = "+4790000001".into();
        callback.users = vec![(u, crate::store::CallUserRole::Caller)];
        callback.answered_by = None;
        callback.answered_at_ms = Some(10_000_000);
        replies.push(h.write_call(callback));
        for r in replies {
            r.wait().expect("written");
        }
        let log = h
            .queue_log(QueueLogFilter {
                tenant: t,
                queue: Some(q),
                member: None,
                since_ms: None,
                limit: 1_000,
            })
            .wait()
            .expect("log");
        assert_eq!(log.len(), 300);
        assert!(log.iter().all(|v| v.offers.len() == 1));
        assert!(log
            .iter()
            .all(|v| v.handled_by.as_ref().map(|u| u.extension.as_str()) == Some("10")));
        let counts = h.queue_today_counts(0).wait().expect("counts");
        assert_eq!(counts, [(q, 0, 300)]);
        assert_eq!(
            h.delete_queue_history_expired(1_000 * 86_400_000)
                .wait()
                .expect("retention"),
            300
        );
        store.close().expect("close");
    }

    #[test]
    fn conferences_through_the_handle() {
        use crate::store::{
            CommandResult, ConferenceControl, ConferenceLive, ConferenceLogFilter,
            ConferenceOrigin, ConferenceRecord, LiveParticipantId, NewRoom, PinRole, RoomPin,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("conf.db")).expect("open");
        let h = store.handle();
        let t = h.add_tenant("Acme").wait().expect("tenant");
        let u = h.add_user(user(t, "10")).wait().expect("user");
        let r0 = h.conference_config_revision().wait().expect("revision");
        let room = h
            .add_room(
                t,
                NewRoom {
                    number: Some("+4721000100".into()),
                    pin: Some(RoomPin::new("2468")),
                    owner: Some(u),
                    ..NewRoom::new("Board", "800")
                },
            )
            .wait()
            .expect("room");
        // The PIN is verified on a reader; a write queued before it is seen.
        h.set_room_pin(room, PinRole::Moderator, Some(RoomPin::new("1357")))
            .wait()
            .expect("moderator pin");
        assert_eq!(
            h.verify_room_pin(room, RoomPin::new("1357"))
                .wait()
                .expect("verify"),
            Some(PinRole::Moderator)
        );
        assert_eq!(
            h.verify_room_pin(room, RoomPin::new("2468"))
                .wait()
                .expect("verify"),
            Some(PinRole::Participant)
        );
        assert_eq!(
            h.verify_room_pin(room, RoomPin::new("0000"))
                .wait()
                .expect("verify"),
            None
        );
        let snap = h.load_rooms().wait().expect("rooms");
        assert!(snap.revision > r0);
        assert_eq!(
            snap.revision,
            h.conference_config_revision().wait().expect("revision")
        );
        assert_eq!(snap.rooms.len(), 1);
        assert!(snap.rooms[0].has_pin && snap.rooms[0].has_moderator_pin);
        assert_eq!(
            h.room_by_number("+4721000100")
                .wait()
                .expect("by number")
                .map(|r| r.id),
            Some(room)
        );
        assert_eq!(
            h.room_by_extension(t, "800")
                .wait()
                .expect("by ext")
                .map(|r| r.id),
            Some(room)
        );
        assert_eq!(
            h.find_room(t, "board").wait().expect("find").map(|r| r.id),
            Some(room)
        );
        // A user on the room's extension is refused through the handle too.
        assert!(matches!(
            h.add_user(user(t, "800")).wait(),
            Err(StoreError::Duplicate {
                field: Field::Extension
            })
        ));

        // The daemon's side: live state, a command round trip, the record.
        h.write_conference_live(
            1_000,
            vec![ConferenceLive {
                room,
                locked: false,
                started_at_ms: 900,
                participants: vec![],
            }],
        )
        .wait()
        .expect("live");
        let live = h.conference_live(t, Some(room)).wait().expect("live");
        assert_eq!((live.updated_at_ms, live.rooms.len()), (Some(1_000), 1));
        let cmd = h
            .send_conference_command(room, ConferenceControl::Kick(LiveParticipantId(2)), 2_000)
            .wait()
            .expect("send");
        let pending = h.pending_conference_commands(2_500).wait().expect("poll");
        assert_eq!(pending.len(), 1);
        assert!(h
            .finish_conference_command(cmd, CommandResult::NoSuchParticipant, 2_600)
            .wait()
            .expect("finish"));
        assert_eq!(
            h.conference_command(cmd).wait().expect("status").result,
            Some(CommandResult::NoSuchParticipant)
        );
        let other = h
            .send_conference_command(room, ConferenceControl::Lock, 3_000)
            .wait()
            .expect("send");
        assert_eq!(
            h.expire_conference_command(other, 8_000)
                .wait()
                .expect("expire")
                .result,
            Some(CommandResult::Expired)
        );
        let id = h
            .write_conference(ConferenceRecord {
                tenant: t,
                origin: ConferenceOrigin::Room {
                    room,
                    name: "Board".into(),
                },
                started_at_ms: 1_700_000_000_000,
                ended_at_ms: 1_700_000_060_000,
                participants: vec![],
            })
            .wait()
            .expect("record");
        let log = h
            .list_conferences(ConferenceLogFilter {
                tenant: t,
                room: Some(room),
                user: None,
                since_ms: None,
                limit: 10,
            })
            .wait()
            .expect("log");
        assert_eq!(log.iter().map(|c| c.id).collect::<Vec<_>>(), [id]);
        // The hourly call log retention takes the conference log with it.
        h.delete_calls_before(1_700_000_000_001)
            .wait()
            .expect("retention");
        assert!(h
            .list_conferences(ConferenceLogFilter {
                tenant: t,
                room: None,
                user: None,
                since_ms: None,
                limit: 10,
            })
            .wait()
            .expect("log")
            .is_empty());
        h.remove_room(room).wait().expect("remove");
        assert!(h.list_rooms(Some(t)).wait().expect("list").is_empty());
        store.close().expect("close");
    }

    #[cfg(unix)]
    #[test]
    fn new_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("private.db");
        let store = Store::open(&path).expect("open");
        store.handle().add_tenant("Acme").wait().expect("write");
        for p in [path.clone(), path.with_extension("db-wal")] {
            let mode = std::fs::metadata(&p).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", p.display());
        }
        store.close().expect("close");
    }

    #[test]
    fn refuses_newer_schema_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new.db");
        {
            let conn = Connection::open(&path).expect("open");
            conn.pragma_update(None, "user_version", 99).expect("set");
        }
        match Store::open(&path) {
            Err(StoreError::SchemaTooNew { found: 99, .. }) => {}
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }

    #[test]
    fn concurrent_readers_and_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("c.db")).expect("open");
        let h = store.handle();
        let t = h.add_tenant("Acme").wait().expect("tenant");
        let threads: Vec<_> = (0..4)
            .map(|k| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let ext = format!("{}", 100 * (k + 1) + i);
                        h.add_user(user(t, &ext)).wait().expect("add");
                        let found = h.find_user(t, &ext).wait().expect("find");
                        assert!(found.is_some(), "read-your-writes");
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().expect("thread");
        }
        assert_eq!(h.list_users(None).wait().expect("list").len(), 200);
        store.close().expect("close");
    }
}
