//! The OneRoster 1.2 CSV binding, as far as a roster import reads it: the
//! manifest, `orgs.csv`, `users.csv` and `roles.csv`, parsed into typed rows
//! and checked against the binding's rules. Every problem found is kept (up
//! to `MAX_PROBLEMS`) as `file:line: column: message`, so a district fixes
//! its export in one round trip; a package with any problem is refused whole.
//!
//! The rules, from the binding:
//! - `manifest.csv` has the columns `propertyName,value`; `manifest.version`
//!   is `1.0`, `oneroster.version` is `1.2`, and each `file.<name>` is
//!   `absent`, `bulk` or `delta`. A file marked bulk or delta must be in the
//!   package, one marked absent must not be.
//! - Columns are found by their (case-sensitive) header names, in any order;
//!   a column the binding does not define for the file must be an extension
//!   named `metadata.*`. The columns whose values are required, and
//!   `status` and `dateLastModified`, must be in the header.
//! - Bulk: `status` and `dateLastModified` are blank (the file is the whole
//!   set). Delta: both required, `status` is `active` or `tobedeleted`,
//!   `dateLastModified` a DateTime.
//! - DateTime is `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (UTC); Date is
//!   `YYYY-MM-DD`; booleans are `true` / `false`; `sourcedId` is unique
//!   within its file.
//! - Enumerations: org `type` is department, school, district, local, state
//!   or national; `roleType` primary or secondary; roles' `role` is aide,
//!   counselor, districtAdministrator, guardian, parent, principal, proctor,
//!   relative, siteAdministrator, student, systemAdministrator or teacher.
//!   Where the binding allows extensions (`type`, `role`), a value starting
//!   with `ext:` is taken too.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::package::Files;

/// The most problems a refusal lists (the count says how many there were).
pub const MAX_PROBLEMS: usize = 100;

/// One way a package breaks the binding (or the import's rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    /// 1-based line of the file (the header is line 1).
    pub line: u64,
    /// The column (or property) the problem is in; `(file)` for the file as a whole.
    pub column: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}: {}", self.file, self.line, self.column, self.message)
    }
}

/// Problems found, the first `MAX_PROBLEMS` of them kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    pub list: Vec<Problem>,
    pub total: usize,
}

impl Problems {
    pub fn add(&mut self, file: &str, line: u64, column: &str, message: impl Into<String>) {
        self.total += 1;
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(Problem {
                file: file.to_owned(),
                line,
                column: column.to_owned(),
                message: message.into(),
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The lines of the refusal, `file:line: column: message` each.
    pub fn lines(&self) -> Vec<String> {
        self.list.iter().map(Problem::to_string).collect()
    }
}

/// How the manifest says a file is supplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileMode {
    Absent,
    /// The whole set: what is not in the file is gone.
    Bulk,
    /// Changes only: rows carry `status` and `dateLastModified`.
    Delta,
}

impl FileMode {
    fn parse(raw: &str) -> Option<FileMode> {
        match raw {
            "absent" => Some(FileMode::Absent),
            "bulk" => Some(FileMode::Bulk),
            "delta" => Some(FileMode::Delta),
            _ => None,
        }
    }
}

/// A row's status: bulk rows are active; delta rows say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    ToBeDeleted,
}

/// A calendar date (`YYYY-MM-DD`), ordered by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl Date {
    pub fn parse(raw: &str) -> Option<Date> {
        let b = raw.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let year = digits(&b[0..4])? as i32;
        let month = digits(&b[5..7])? as u8;
        let day = digits(&b[8..10])? as u8;
        (1..=12)
            .contains(&month)
            .then_some(())
            .filter(|_| day >= 1 && day <= days_in(year, month))?;
        Some(Date { year, month, day })
    }

    /// The UTC date `days` days after 1970-01-01 (civil-from-days).
    pub fn from_unix_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }

    /// Today in UTC.
    pub fn today() -> Date {
        Date::from_unix_days(crate::domain::Timestamp::now().micros().div_euclid(86_400_000_000))
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter()
        .try_fold(0u32, |n, c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
}

fn days_in(year: i32, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A DateTime as the binding writes it: `YYYY-MM-DDTHH:MM:SS`, an optional
/// fraction of a second, and `Z` (UTC).
pub fn is_datetime(raw: &str) -> bool {
    let b = raw.as_bytes();
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b.last() != Some(&b'Z') {
        return false;
    }
    let Some(date) = raw.get(..10) else { return false };
    let (Some(h), Some(m), Some(s)) = (digits(&b[11..13]), digits(&b[14..16]), digits(&b[17..19])) else {
        return false;
    };
    let fraction = &b[19..b.len() - 1];
    let fraction_ok = fraction.is_empty()
        || (fraction.len() >= 2 && fraction[0] == b'.' && fraction[1..].iter().all(u8::is_ascii_digit));
    Date::parse(date).is_some() && h < 24 && m < 60 && s <= 60 && fraction_ok
}

/// An org's `type`, as far as the import cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgType {
    District,
    School,
    /// department, local, state, national or an `ext:` type.
    Other,
}

/// A `roles.csv` role, as far as the import cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RosterRole {
    Student,
    Teacher,
    SiteAdministrator,
    DistrictAdministrator,
    /// Any other role of the binding (aide, guardian, ...) or an `ext:` one.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub line: u64,
    pub sourced_id: String,
    pub status: Status,
    pub name: String,
    pub kind: OrgType,
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub line: u64,
    pub sourced_id: String,
    pub status: Status,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRow {
    pub line: u64,
    pub sourced_id: String,
    pub status: Status,
    pub user: String,
    pub role: RosterRole,
    pub org: String,
    pub begin: Option<Date>,
    pub end: Option<Date>,
}

/// One of the files the import reads, as supplied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table<T> {
    /// Bulk or delta (an absent file is no table).
    pub mode: FileMode,
    pub rows: Vec<T>,
    /// Every `sourcedId` in the file, its rows with problems too (so that a
    /// bad row is reported once, not again by every reference to it).
    pub ids: std::collections::HashSet<String>,
}

/// A package that follows the binding, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub orgs: Option<Table<Org>>,
    pub users: Option<Table<User>>,
    pub roles: Option<Table<RoleRow>>,
}

impl Package {
    pub fn mode(&self, name: &str) -> FileMode {
        match name {
            "orgs" => self.orgs.as_ref().map_or(FileMode::Absent, |t| t.mode),
            "users" => self.users.as_ref().map_or(FileMode::Absent, |t| t.mode),
            "roles" => self.roles.as_ref().map_or(FileMode::Absent, |t| t.mode),
            _ => FileMode::Absent,
        }
    }
}

const MANIFEST: &str = "manifest.csv";
const WHOLE: &str = "(file)";

/// A column of a file: its name and whether a row must give it a value.
/// Every file's `status` and `dateLastModified` follow the file's mode.
struct Column {
    name: &'static str,
    required: bool,
}

const fn col(name: &'static str, required: bool) -> Column {
    Column { name, required }
}

const ORGS: &[Column] = &[
    col("sourcedId", true),
    col("status", false),
    col("dateLastModified", false),
    col("name", true),
    col("type", true),
    col("identifier", false),
    col("parentSourcedId", false),
];

const USERS: &[Column] = &[
    col("sourcedId", true),
    col("status", false),
    col("dateLastModified", false),
    col("enabledUser", true),
    col("username", true),
    col("userIds", false),
    col("givenName", true),
    col("familyName", true),
    col("middleName", false),
    col("identifier", false),
    col("email", false),
    col("sms", false),
    col("phone", false),
    col("agentSourcedIds", false),
    col("grades", false),
    col("password", false),
    col("userMasterIdentifier", false),
    col("resourceSourcedIds", false),
    col("preferredGivenName", false),
    col("preferredMiddleName", false),
    col("preferredFamilyName", false),
    col("primaryOrgSourcedId", false),
    col("pronouns", false),
];

const ROLES: &[Column] = &[
    col("sourcedId", true),
    col("status", false),
    col("dateLastModified", false),
    col("userSourcedId", true),
    col("roleType", true),
    col("role", true),
    col("beginDate", false),
    col("endDate", false),
    col("orgSourcedId", true),
    col("userProfileSourcedId", false),
];

/// Parses and checks a package. Every problem found is returned, none of
/// the rows if there is one.
pub fn parse(files: &Files) -> Result<Package, Problems> {
    let mut problems = Problems::default();
    let modes = manifest(files, &mut problems);
    let mut package = Package {
        orgs: None,
        users: None,
        roles: None,
    };
    if let Some(modes) = modes {
        package.orgs = table(files, "orgs.csv", modes[0], ORGS, &mut problems, org);
        package.users = table(files, "users.csv", modes[1], USERS, &mut problems, user);
        package.roles = table(files, "roles.csv", modes[2], ROLES, &mut problems, role);
        if let (Some(roles), Some(users)) = (&package.roles, &package.users) {
            if users.mode == FileMode::Bulk {
                // Bulk users are every user: a role must name one of them.
                for r in &roles.rows {
                    if !users.ids.contains(&r.user) {
                        problems.add(
                            "roles.csv",
                            r.line,
                            "userSourcedId",
                            format!("no user {:?} in users.csv (a bulk file lists every user)", r.user),
                        );
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(package)
    } else {
        Err(problems)
    }
}

/// The manifest: the modes of orgs, users and roles, if it is sound.
fn manifest(files: &Files, problems: &mut Problems) -> Option<[FileMode; 3]> {
    let Some(bytes) = files.get(MANIFEST) else {
        problems.add(
            MANIFEST,
            1,
            WHOLE,
            "the package has no manifest.csv at the root of the ZIP archive",
        );
        return None;
    };
    let before = problems.total;
    let mut props: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut reader = reader(bytes);
    let header = headers(&mut reader, MANIFEST, problems)?;
    let (Some(name_at), Some(value_at)) = (header.get("propertyName"), header.get("value")) else {
        problems.add(MANIFEST, 1, WHOLE, "the header must be propertyName,value");
        return None;
    };
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.add(MANIFEST, error_line(&e), WHOLE, unreadable(&e));
                continue;
            }
        };
        let line = line_of(&record);
        let name = record.get(*name_at).unwrap_or("").to_owned();
        let value = record.get(*value_at).unwrap_or("").to_owned();
        if name.is_empty() {
            problems.add(MANIFEST, line, "propertyName", "is required");
            continue;
        }
        if let Some((_, first)) = props.get(&name) {
            problems.add(MANIFEST, line, "propertyName", format!("{name} repeats line {first}"));
            continue;
        }
        props.insert(name, (value, line));
    }
    for (property, wanted) in [("manifest.version", "1.0"), ("oneroster.version", "1.2")] {
        match props.get(property) {
            None => problems.add(MANIFEST, 1, property, format!("is missing (must be {wanted})")),
            Some((value, line)) if value != wanted => problems.add(
                MANIFEST,
                *line,
                "value",
                format!("{property} is {value:?}; this import reads {wanted}"),
            ),
            Some(_) => {}
        }
    }
    for (property, (value, line)) in &props {
        if property.starts_with("file.") && FileMode::parse(value).is_none() {
            problems.add(
                MANIFEST,
                *line,
                "value",
                format!("{property} is {value:?}; must be absent, bulk or delta"),
            );
        }
    }
    let mut modes = [FileMode::Absent; 3];
    for (i, file) in ["orgs", "users", "roles"].into_iter().enumerate() {
        let property = format!("file.{file}");
        let csv = format!("{file}.csv");
        let present = files.names.contains(&csv);
        match props.get(&property) {
            None => problems.add(MANIFEST, 1, &property, "is missing (must be absent, bulk or delta)"),
            Some((value, line)) => match FileMode::parse(value) {
                Some(FileMode::Absent) if present => problems.add(
                    &csv,
                    1,
                    WHOLE,
                    format!("is in the package but manifest.csv line {line} says {property} is absent"),
                ),
                Some(FileMode::Bulk | FileMode::Delta) if !present => problems.add(
                    MANIFEST,
                    *line,
                    "value",
                    format!("{property} is {value} but {csv} is not in the package"),
                ),
                Some(mode) => modes[i] = mode,
                None => {}
            },
        }
    }
    (problems.total == before).then_some(modes)
}

fn reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    csv::ReaderBuilder::new()
        .has_headers(true)
        // Rows of the wrong length are reported here, line by line.
        .flexible(true)
        .from_reader(bytes)
}

/// The header's column names and positions; repeated names are problems.
fn headers(reader: &mut csv::Reader<&[u8]>, file: &str, problems: &mut Problems) -> Option<HashMap<String, usize>> {
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            problems.add(file, 1, WHOLE, unreadable(&e));
            return None;
        }
    };
    if header.is_empty() || header.iter().all(str::is_empty) {
        problems.add(file, 1, WHOLE, "the file has no header row");
        return None;
    }
    let mut at = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        if at.insert(name.to_owned(), i).is_some() {
            problems.add(file, 1, name, "the column appears twice in the header");
        }
    }
    Some(at)
}

fn line_of(record: &csv::StringRecord) -> u64 {
    record.position().map_or(0, csv::Position::line)
}

fn error_line(e: &csv::Error) -> u64 {
    e.position().map_or(0, csv::Position::line)
}

fn unreadable(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "the line is not valid UTF-8".to_owned(),
        _ => format!("the line cannot be read as CSV: {e}"),
    }
}

/// One row, its columns found by name.
pub struct Row<'a> {
    file: &'static str,
    line: u64,
    record: &'a csv::StringRecord,
    at: &'a HashMap<&'static str, usize>,
    mode: FileMode,
}

impl Row<'_> {
    fn get(&self, column: &str) -> &str {
        self.at.get(column).and_then(|i| self.record.get(*i)).unwrap_or("")
    }

    fn optional(&self, column: &str) -> Option<String> {
        Some(self.get(column)).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    fn problem(&self, problems: &mut Problems, column: &str, message: impl Into<String>) {
        problems.add(self.file, self.line, column, message);
    }

    /// `status`, following the file's mode.
    fn status(&self, problems: &mut Problems) -> Status {
        let (status, modified) = (self.get("status"), self.get("dateLastModified"));
        match self.mode {
            FileMode::Delta => {
                if modified.is_empty() {
                    self.problem(problems, "dateLastModified", "is required in a delta file");
                } else if !is_datetime(modified) {
                    self.problem(
                        problems,
                        "dateLastModified",
                        format!("{modified:?} is not a DateTime (YYYY-MM-DDTHH:MM:SS.sssZ)"),
                    );
                }
                match status {
                    "active" => Status::Active,
                    "tobedeleted" => Status::ToBeDeleted,
                    "" => {
                        self.problem(
                            problems,
                            "status",
                            "is required in a delta file (active or tobedeleted)",
                        );
                        Status::Active
                    }
                    other => {
                        self.problem(problems, "status", format!("{other:?} must be active or tobedeleted"));
                        Status::Active
                    }
                }
            }
            _ => {
                if !status.is_empty() {
                    self.problem(problems, "status", "must be blank in a bulk file");
                }
                if !modified.is_empty() {
                    self.problem(problems, "dateLastModified", "must be blank in a bulk file");
                }
                Status::Active
            }
        }
    }

    fn date(&self, problems: &mut Problems, column: &str) -> Option<Date> {
        let raw = self.get(column);
        if raw.is_empty() {
            return None;
        }
        let date = Date::parse(raw);
        if date.is_none() {
            self.problem(problems, column, format!("{raw:?} is not a date (YYYY-MM-DD)"));
        }
        date
    }
}

/// Reads one of the import's files: header, rows, unique `sourcedId`s.
fn table<T>(
    files: &Files,
    file: &'static str,
    mode: FileMode,
    columns: &[Column],
    problems: &mut Problems,
    typed: fn(&Row<'_>, &mut Problems) -> T,
) -> Option<Table<T>> {
    if mode == FileMode::Absent {
        return None;
    }
    let bytes = files.get(file)?;
    let mut reader = reader(bytes);
    let header = headers(&mut reader, file, problems)?;
    let mut at: HashMap<&'static str, usize> = HashMap::new();
    let mut header_ok = true;
    for column in columns {
        match header.get(column.name) {
            Some(i) => {
                at.insert(column.name, *i);
            }
            None if column.required || matches!(column.name, "status" | "dateLastModified") => {
                problems.add(file, 1, column.name, "required column is missing from the header");
                header_ok = false;
            }
            None => {}
        }
    }
    for name in header.keys() {
        if !name.starts_with("metadata.") && !columns.iter().any(|c| c.name == name) {
            problems.add(
                file,
                1,
                name,
                format!("is not a column of {file} in OneRoster 1.2 (extensions are named metadata.*)"),
            );
            header_ok = false;
        }
    }
    if !header_ok {
        return None;
    }
    let width = header.len();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.add(file, error_line(&e), WHOLE, unreadable(&e));
                continue;
            }
        };
        let line = line_of(&record);
        if record.len() != width {
            problems.add(
                file,
                line,
                WHOLE,
                format!("the row has {} fields, the header {width}", record.len()),
            );
            continue;
        }
        let row = Row {
            file,
            line,
            record: &record,
            at: &at,
            mode,
        };
        let before = problems.total;
        for column in columns.iter().filter(|c| c.required) {
            if row.get(column.name).is_empty() {
                row.problem(problems, column.name, "is required");
            }
        }
        let id = row.get("sourcedId");
        if !id.is_empty() {
            if let Some(first) = seen.get(id) {
                row.problem(problems, "sourcedId", format!("{id:?} repeats line {first}"));
            } else {
                seen.insert(id.to_owned(), line);
            }
        }
        let value = typed(&row, problems);
        if problems.total == before {
            rows.push(value);
        }
    }
    Some(Table {
        mode,
        rows,
        ids: seen.into_keys().collect(),
    })
}

fn org(row: &Row<'_>, problems: &mut Problems) -> Org {
    let kind = match row.get("type") {
        "district" => OrgType::District,
        "school" => OrgType::School,
        "department" | "local" | "state" | "national" | "" => OrgType::Other,
        ext if ext.starts_with("ext:") => OrgType::Other,
        other => {
            row.problem(
                problems,
                "type",
                format!("{other:?} must be one of department, school, district, local, state, national (or ext:...)"),
            );
            OrgType::Other
        }
    };
    Org {
        line: row.line,
        status: row.status(problems),
        sourced_id: row.get("sourcedId").to_owned(),
        name: row.get("name").to_owned(),
        kind,
        parent: row.optional("parentSourcedId"),
    }
}

fn user(row: &Row<'_>, problems: &mut Problems) -> User {
    let enabled = match row.get("enabledUser") {
        "true" => true,
        "false" | "" => false,
        other => {
            row.problem(problems, "enabledUser", format!("{other:?} must be true or false"));
            false
        }
    };
    User {
        line: row.line,
        status: row.status(problems),
        sourced_id: row.get("sourcedId").to_owned(),
        enabled,
    }
}

fn role(row: &Row<'_>, problems: &mut Problems) -> RoleRow {
    match row.get("roleType") {
        "primary" | "secondary" | "" => {}
        other => row.problem(problems, "roleType", format!("{other:?} must be primary or secondary")),
    }
    let role = match row.get("role") {
        "student" => RosterRole::Student,
        "teacher" => RosterRole::Teacher,
        "siteAdministrator" => RosterRole::SiteAdministrator,
        "districtAdministrator" => RosterRole::DistrictAdministrator,
        "aide"
        | "counselor"
        | "guardian"
        | "parent"
        | "principal"
        | "proctor"
        | "relative"
        | "systemAdministrator"
        | "" => RosterRole::Other,
        ext if ext.starts_with("ext:") => RosterRole::Other,
        other => {
            row.problem(
                problems,
                "role",
                format!(
                    "{other:?} is not a OneRoster 1.2 role (aide, counselor, districtAdministrator, guardian, parent, \
                     principal, proctor, relative, siteAdministrator, student, systemAdministrator, teacher, or ext:...)"
                ),
            );
            RosterRole::Other
        }
    };
    let (begin, end) = (row.date(problems, "beginDate"), row.date(problems, "endDate"));
    if let (Some(b), Some(e)) = (begin, end) {
        if e < b {
            row.problem(problems, "endDate", format!("{e} is before beginDate {b}"));
        }
    }
    RoleRow {
        line: row.line,
        status: row.status(problems),
        sourced_id: row.get("sourcedId").to_owned(),
        user: row.get("userSourcedId").to_owned(),
        role,
        org: row.get("orgSourcedId").to_owned(),
        begin,
        end,
    }
}

#[cfg(test)]
mod tests;
