//! OneRoster 1.2 CSV packages for tests and benches: a small builder of
//! rosters (district, schools, users, roles; bulk or delta), and a generator
//! of a realistic district (`district`).

#![allow(dead_code)]

/// How a file is supplied in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Absent,
    Bulk,
    Delta,
}

impl Mode {
    fn word(self) -> &'static str {
        match self {
            Mode::Absent => "absent",
            Mode::Bulk => "bulk",
            Mode::Delta => "delta",
        }
    }
}

const ORGS_HEADER: &str = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId";
const USERS_HEADER: &str = "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,\
middleName,identifier,email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,resourceSourcedIds,\
preferredGivenName,preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns,metadata.homeroom";
const ROLES_HEADER: &str =
    "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,userProfileSourcedId";
const MODIFIED: &str = "2026-09-01T08:00:00.000Z";

/// A roster package being built. Rows are added in file order.
#[derive(Debug, Clone)]
pub struct Roster {
    pub district: String,
    modes: [Mode; 3],
    orgs: Vec<String>,
    users: Vec<String>,
    roles: Vec<String>,
    /// Files replaced or added as they are (name, contents).
    raw: Vec<(String, String)>,
    /// Manifest lines replaced (property, value); `None` drops the line.
    manifest: Vec<(String, Option<String>)>,
    next_role: u64,
}

impl Roster {
    /// Every file bulk, with the district org `district` named `name`.
    pub fn bulk(district: &str, name: &str) -> Roster {
        Roster::new([Mode::Bulk; 3]).org(district, name, "district", None)
    }

    /// Files in the given modes (orgs, users, roles), no rows yet.
    pub fn new(modes: [Mode; 3]) -> Roster {
        Roster {
            district: String::new(),
            modes,
            orgs: Vec::new(),
            users: Vec::new(),
            roles: Vec::new(),
            raw: Vec::new(),
            manifest: Vec::new(),
            next_role: 1,
        }
    }

    /// A delta package (orgs, users, roles in the given modes) for `district`.
    pub fn delta(district: &str, modes: [Mode; 3]) -> Roster {
        let mut r = Roster::new(modes);
        r.district = district.to_owned();
        r
    }

    fn lifecycle(&self, file: usize, deleted: bool) -> (String, String) {
        match (self.modes[file], deleted) {
            (Mode::Delta, true) => ("tobedeleted".into(), MODIFIED.into()),
            (Mode::Delta, false) => ("active".into(), MODIFIED.into()),
            _ => (String::new(), String::new()),
        }
    }

    pub fn org(mut self, sid: &str, name: &str, kind: &str, parent: Option<&str>) -> Roster {
        if kind == "district" {
            self.district = sid.to_owned();
        }
        let (status, modified) = self.lifecycle(0, false);
        self.orgs.push(format!(
            "{sid},{status},{modified},{},{kind},,{}",
            quote(name),
            parent.unwrap_or("")
        ));
        self
    }

    pub fn school(self, sid: &str, name: &str) -> Roster {
        let district = self.district.clone();
        self.org(sid, name, "school", Some(&district))
    }

    pub fn deleted_school(mut self, sid: &str, name: &str) -> Roster {
        let (status, modified) = self.lifecycle(0, true);
        self.orgs.push(format!(
            "{sid},{status},{modified},{},school,,{}",
            quote(name),
            self.district
        ));
        self
    }

    pub fn user(mut self, sid: &str, enabled: bool) -> Roster {
        let (status, modified) = self.lifecycle(1, false);
        self.users.push(format!(
            "{sid},{status},{modified},{enabled},{sid},,Given,Family,,,,,,,,,,,,,,,,7B"
        ));
        self
    }

    pub fn deleted_user(mut self, sid: &str) -> Roster {
        let (status, modified) = self.lifecycle(1, true);
        self.users.push(format!(
            "{sid},{status},{modified},true,{sid},,Given,Family,,,,,,,,,,,,,,,,"
        ));
        self
    }

    /// A role row (`begin`/`end` as `YYYY-MM-DD` or empty).
    pub fn role_row(mut self, user: &str, role: &str, org: &str, begin: &str, end: &str, deleted: bool) -> Roster {
        let (status, modified) = self.lifecycle(2, deleted);
        let sid = format!("role-{user}-{org}-{role}");
        self.next_role += 1;
        self.roles.push(format!(
            "{sid},{status},{modified},{user},primary,{role},{begin},{end},{org},"
        ));
        self
    }

    /// An enabled user who is a student at `school`.
    pub fn student(self, user: &str, school: &str) -> Roster {
        self.user(user, true).role_row(user, "student", school, "", "", false)
    }

    /// An enabled user with a staff role (`teacher`, `siteAdministrator`,
    /// `districtAdministrator`) at `org`.
    pub fn staff(self, user: &str, role: &str, org: &str) -> Roster {
        self.user(user, true).role_row(user, role, org, "", "", false)
    }

    /// Replaces (or adds) a file as given.
    pub fn file(mut self, name: &str, contents: &str) -> Roster {
        self.raw.retain(|(n, _)| n != name);
        self.raw.push((name.to_owned(), contents.to_owned()));
        self
    }

    /// Sets (or with `None`, drops) a manifest property.
    pub fn manifest(mut self, property: &str, value: Option<&str>) -> Roster {
        self.manifest.push((property.to_owned(), value.map(str::to_owned)));
        self
    }

    /// The package's files, in order.
    pub fn files(&self) -> Vec<(String, String)> {
        let mut props: Vec<(String, String)> = vec![
            ("manifest.version".into(), "1.0".into()),
            ("oneroster.version".into(), "1.2".into()),
            ("file.academicSessions".into(), "absent".into()),
            ("file.classes".into(), "absent".into()),
            ("file.courses".into(), "absent".into()),
            ("file.enrollments".into(), "bulk".into()),
            ("file.orgs".into(), self.modes[0].word().into()),
            ("file.users".into(), self.modes[1].word().into()),
            ("file.roles".into(), self.modes[2].word().into()),
            ("source.systemName".into(), "Test SIS".into()),
        ];
        for (property, value) in &self.manifest {
            props.retain(|(p, _)| p != property);
            if let Some(v) = value {
                props.push((property.clone(), v.clone()));
            }
        }
        let mut manifest = String::from("propertyName,value\n");
        for (p, v) in props {
            manifest.push_str(&format!("{p},{v}\n"));
        }
        let table = |header: &str, rows: &[String]| {
            let mut out = String::with_capacity(rows.len() * 64 + header.len());
            out.push_str(header);
            out.push('\n');
            for row in rows {
                out.push_str(row);
                out.push('\n');
            }
            out
        };
        let mut files = vec![("manifest.csv".to_owned(), manifest)];
        // The import ignores the files it does not read.
        files.push((
            "enrollments.csv".to_owned(),
            "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role\n".to_owned(),
        ));
        for (i, (name, header, rows)) in [
            ("orgs.csv", ORGS_HEADER, &self.orgs),
            ("users.csv", USERS_HEADER, &self.users),
            ("roles.csv", ROLES_HEADER, &self.roles),
        ]
        .into_iter()
        .enumerate()
        {
            if self.modes[i] != Mode::Absent {
                files.push((name.to_owned(), table(header, rows)));
            }
        }
        for (name, contents) in &self.raw {
            files.retain(|(n, _)| n != name);
            files.push((name.clone(), contents.clone()));
        }
        files
    }

    /// The package as a ZIP archive.
    pub fn zip(&self) -> Vec<u8> {
        let files = self.files();
        tenant_service::roster::write_zip(files.iter().map(|(n, c)| (n.as_str(), c.as_bytes())))
            .unwrap_or_else(|e| panic!("zip: {e}"))
    }

    /// Writes the files into `dir` (the CLI's directory form).
    pub fn write_dir(&self, dir: &std::path::Path) {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        for (name, contents) in self.files() {
            std::fs::write(dir.join(name), contents).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// A realistic district: `schools` schools named `school-NN`, `students`
/// students spread over them (ids `stu-NNNNNN`, in school order), one
/// teacher per 20 students and one site administrator per school, and a
/// district administrator. All bulk.
pub fn district(schools: usize, students: usize) -> Roster {
    let mut r = Roster::bulk("district-1", "Springfield Unified");
    for s in 0..schools {
        r = r.school(&format!("school-{s:02}"), &format!("Springfield School {s:02}"));
    }
    for i in 0..students {
        let school = format!("school-{:02}", i * schools / students.max(1));
        r = r.student(&format!("stu-{i:06}"), &school);
    }
    for t in 0..students / 20 {
        let school = format!("school-{:02}", t * schools / (students / 20).max(1));
        r = r.staff(&format!("tch-{t:05}"), "teacher", &school);
    }
    for s in 0..schools {
        r = r.staff(&format!("adm-{s:02}"), "siteAdministrator", &format!("school-{s:02}"));
    }
    r.staff("supt-1", "districtAdministrator", "district-1")
}
