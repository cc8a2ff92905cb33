use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::*;
use crate::config::{ExtraColumn, ExtraColumnKind};
use crate::ledger::Ledger;
use crate::research::AuditLog;
use crate::research::deid::DeidOptions;
use crate::research::vault::{KeySource, ResearchIdFormat, Vault, generate_key_file};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
}

fn errors_of(schema: &Schema, text: &str) -> Vec<String> {
    let parsed = parse(schema, text, today());
    parsed.errors.iter().map(ToString::to_string).collect()
}

fn extra(name: &str, kind: ExtraColumnKind) -> ExtraColumn {
    ExtraColumn {
        name: name.into(),
        kind,
        unit: None,
        min: None,
        max: None,
        values: Vec::new(),
    }
}

#[test]
fn a_good_file_is_read_and_normalised() {
    let text = "\u{feff}Patient_ID,record_date,age_years,sex,smoking,pack_years,comorbidities,history,cea_ng_ml,\n\
                P1,2024-02-29,61,m,Former,30.5, COPD ;;diabetes ,\"cough, 3 months\",+4.2,\n\
                P1,2024-03-01,,,,,,,,\n\
                P2,,,F,never,0,,,,\n";
    let parsed = parse(&Schema::built_in(), text, today());
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(parsed.rows.len(), 3);
    let first = &parsed.rows[0];
    assert_eq!((first.line, first.patient_id.as_str()), (2, "P1"));
    assert_eq!(first.record["sex"], "M");
    assert_eq!(first.record["smoking"], "former");
    assert_eq!(first.record["comorbidities"], "COPD; diabetes");
    assert_eq!(first.record["history"], "cough, 3 months");
    assert_eq!(first.record["cea_ng_ml"], "4.2");
    assert_eq!(parsed.rows[1].record.len(), 1, "empty cells are absent");
    assert_eq!(parsed.rows[2].line, 4);
}

#[test]
fn every_bad_cell_is_reported_with_its_line_and_column() {
    let text = "patient_id,record_date,age_years,sex,height_cm,smoking,pack_years,history,wbc_10e9_l\n\
                P1,2024-13-01,61,M,170,never,0,,7\n\
                ,2024-01-01,61,M,170,never,0,,7\n\
                P3,2024-01-01,121,X,17O,sometimes,0,,-1\n\
                P4,2030-01-01,1e2,F,170,never,10,,7\n\
                \"P5\",\"1899-12-31\",60,F,170,current,5,\"two\nlines\",7,extra\n\
                P6,2024/01/01,60.,F,170,current,5,,7\n";
    let errors = errors_of(&Schema::built_in(), text);
    let expected = [
        "line 2, column record_date: \"2024-13-01\" is not a date YYYY-MM-DD",
        "line 3, column patient_id: empty; every row needs the Patient ID",
        "line 4, column age_years: 121 is above the maximum 120 years",
        "line 4, column sex: \"X\" is not one of M, F, O",
        "line 4, column height_cm: \"17O\" is not a number",
        "line 4, column smoking: \"sometimes\" is not one of never, former, current, unknown",
        "line 4, column wbc_10e9_l: -1 is below the minimum 0 10^9/L",
        "line 5, column record_date: 2030-01-01 is in the future",
        "line 5, column age_years: \"1e2\" is not a number",
        "line 5, column pack_years: 10 pack-years for a patient who never smoked",
        "line 6: 10 cells where the header has 9",
        "line 8, column record_date: \"2024/01/01\" is not a date YYYY-MM-DD",
        "line 8, column age_years: \"60.\" is not a number",
    ];
    for want in expected {
        assert!(
            errors.iter().any(|e| e.starts_with(want)),
            "missing {want:?} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    // A quoted cell over two lines: the next row's line number counts both.
    let text = "patient_id,history,age_years\nP1,\"a\nb\",1\nP2,,500\n";
    assert_eq!(
        errors_of(&Schema::built_in(), text),
        ["line 4, column age_years: 500 is above the maximum 120 years"]
    );
    let before_1900 = "patient_id,pathology_date\nP1,1899-12-31\n";
    assert_eq!(
        errors_of(&Schema::built_in(), before_1900),
        ["line 2, column pathology_date: 1899-12-31 is before 1900"]
    );
}

#[test]
fn errors_never_repeat_a_patient_id_or_free_text() {
    let long_id = "SECRET".repeat(20);
    let text = format!(
        "patient_id,history,age_years\n{long_id},,1\nP2,{},1\n",
        "SECRETTEXT ".repeat(1000)
    );
    let errors = errors_of(&Schema::built_in(), &text);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|e| !e.contains("SECRET")), "{errors:?}");
}

#[test]
fn the_header_is_checked_first() {
    let schema = Schema::built_in();
    let unknown = errors_of(&schema, "patient_id,ldh,Favourite_Colour,sex\nP1,1,red,M\n");
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert!(
        unknown[0].starts_with("line 1: unknown column(s) ldh, favourite_colour:"),
        "{unknown:?}"
    );
    assert!(unknown[0].contains("extra_columns"), "{unknown:?}");
    assert!(errors_of(&schema, "sex,age_years\nM,1\n")[0].contains("no patient_id column"));
    assert!(
        errors_of(&schema, "patient_id,sex,SEX\nP,M,M\n")[0].contains("repeated column(s) sex")
    );
    assert!(errors_of(&schema, "patient_id,,sex\nP,,M\n")[0].contains("column 2 has no name"));
    assert!(errors_of(&schema, "patient_id,sex\n")[0].contains("no rows"));
    assert!(errors_of(&schema, "")[0].contains("no patient_id column"));
    assert_eq!(
        errors_of(&schema, "patient_id,sex,\nP,M,oops\n"),
        ["line 2: a value in the last column, which has no name"]
    );
}

#[test]
fn declared_columns_are_accepted_and_checked() {
    let mut ldh = extra("ldh_iu", ExtraColumnKind::Number);
    ldh.min = Some(0.0);
    ldh.max = Some(5000.0);
    ldh.unit = Some("IU/L".into());
    let mut egfr = extra("egfr_mutation", ExtraColumnKind::Enum);
    egfr.values = vec!["positive".into(), "negative".into()];
    let schema = Schema::new(&[
        ldh,
        egfr,
        extra("biopsy_date", ExtraColumnKind::Date),
        extra("notes", ExtraColumnKind::Text),
    ])
    .unwrap();
    let text = "patient_id,ldh_iu,egfr_mutation,biopsy_date,notes\n\
                P1,230,Positive,2024-01-02,fine\n\
                P2,9000,maybe,2024-01-32,\n";
    let parsed = parse(&schema, text, today());
    assert_eq!(parsed.rows.len(), 1);
    assert_eq!(parsed.rows[0].record["egfr_mutation"], "positive");
    let errors: Vec<String> = parsed.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        [
            "line 3, column ldh_iu: 9000 is above the maximum 5000 IU/L",
            "line 3, column egfr_mutation: \"maybe\" is not one of positive, negative",
            "line 3, column biopsy_date: \"2024-01-32\" is not a date YYYY-MM-DD",
        ]
    );
    assert_eq!(schema.column("notes").unwrap().kind, Kind::Text);
    assert!(schema.column("notes").unwrap().declared);
}

#[test]
fn bad_declarations_are_refused() {
    let refused = |column: ExtraColumn| Schema::new(&[column]).unwrap_err().to_string();
    assert!(refused(extra("Bad Name", ExtraColumnKind::Text)).contains("lower case"));
    assert!(refused(extra("sex", ExtraColumnKind::Text)).contains("built-in"));
    assert!(refused(extra("grade", ExtraColumnKind::Enum)).contains("needs values"));
    let mut inverted = extra("x", ExtraColumnKind::Number);
    inverted.min = Some(5.0);
    inverted.max = Some(1.0);
    assert!(refused(inverted).contains("min must not be above max"));
    let mut text_with_max = extra("y", ExtraColumnKind::Text);
    text_with_max.max = Some(1.0);
    assert!(refused(text_with_max).contains("for number columns"));
    let mut twice = extra("z", ExtraColumnKind::Enum);
    twice.values = vec!["a".into(), "A".into()];
    assert!(refused(twice).contains("given twice"));
    let a = extra("dup", ExtraColumnKind::Text);
    assert!(
        Schema::new(&[a.clone(), a])
            .unwrap_err()
            .to_string()
            .contains("declared twice")
    );
    // The configuration refuses them too.
    let mut config = crate::config::ResearchConfig::default();
    config.clinical.extra_columns = vec![extra("sex", ExtraColumnKind::Text)];
    assert!(config.validate().is_err());
}

struct Fixture {
    dir: tempfile::TempDir,
    key: KeySource,
    ledger: Ledger,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("vault.key");
    generate_key_file(&key_path).unwrap();
    let key = KeySource::KeyFile(key_path);
    Vault::create(dir.path(), &key, ResearchIdFormat::default()).unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    Fixture { dir, key, ledger }
}

impl Fixture {
    fn import(&self, csv: &str, allow_unknown: bool) -> anyhow::Result<ImportSummary> {
        let mut vault = Vault::open(self.dir.path(), &self.key).unwrap();
        let audit = AuditLog::open(self.dir.path()).unwrap();
        import(
            &self.ledger,
            self.dir.path(),
            &mut vault,
            &audit,
            &Schema::built_in(),
            csv,
            allow_unknown,
            "tester",
        )
    }

    fn vault(&self) -> Vault {
        Vault::open(self.dir.path(), &self.key).unwrap()
    }

    fn audit_actions(&self) -> Vec<String> {
        AuditLog::open(self.dir.path())
            .unwrap()
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }
}

#[test]
fn imports_are_all_or_nothing_and_replace_a_patients_records() {
    let f = fixture();
    let good = "patient_id,age_years,smoking\nP1,60,current\nP1,61,current\nP2,70,never\n";
    // No images of P1 or P2 are stored: refused, naming the lines.
    let refused = f.import(good, false).unwrap_err().to_string();
    assert!(refused.contains("nothing was stored"), "{refused}");
    assert!(
        refused.contains("line 2, column patient_id: no images"),
        "{refused}"
    );
    assert!(refused.contains("line 4, column patient_id"), "{refused}");
    assert!(!refused.contains("P1"), "{refused}");
    assert_eq!(f.vault().clinical_patients(), 0);

    let summary = f.import(good, true).unwrap();
    assert_eq!(
        (summary.rows, summary.patients, summary.unknown_patients),
        (3, 2, 2)
    );
    assert_eq!(summary.replaced_patients, 0);
    assert_eq!(f.vault().clinical("P1").len(), 2);

    // One bad row: nothing of the file is stored, P1 keeps both records.
    let bad = "patient_id,age_years\nP1,62\nP2,999\n";
    let refused = f.import(bad, true).unwrap_err().to_string();
    assert!(refused.contains("line 3, column age_years"), "{refused}");
    assert_eq!(f.vault().clinical("P1").len(), 2);
    assert_eq!(f.vault().clinical("P2")[0]["age_years"], "70");

    // Re-import replaces P1's records only.
    let summary = f.import("patient_id,age_years\nP1,62\n", true).unwrap();
    assert_eq!(
        (summary.replaced_patients, summary.replaced_records),
        (1, 2)
    );
    let vault = f.vault();
    assert_eq!(vault.clinical("P1").len(), 1);
    assert_eq!(vault.clinical("P1")[0]["age_years"], "62");
    assert_eq!(vault.clinical("P2").len(), 1);
    drop(vault);

    let entries = AuditLog::open(f.dir.path()).unwrap().entries().unwrap();
    let imports: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "clinical.import")
        .collect();
    assert_eq!(imports.len(), 2, "refused imports store nothing");
    assert_eq!(imports[1].details["replaced_patients"], 1);
    let logged = serde_json::to_string(&entries).unwrap();
    assert!(!logged.contains("P1") && !logged.contains("P2"), "{logged}");
}

#[test]
fn show_is_audited_and_finds_by_either_id() {
    let f = fixture();
    f.import("patient_id,sex\nP1,F\n", true).unwrap();
    let mut vault = f.vault();
    let pseudonym = vault.pseudonym("P1", "DOE^JANE").unwrap();
    vault.save().unwrap();
    drop(vault);
    let by_patient = show(
        f.dir.path(),
        &f.key,
        &ClinicalSubject::PatientId("P1".into()),
        "tester",
    )
    .unwrap();
    assert_eq!(
        by_patient.research_id.as_deref(),
        Some(pseudonym.research_id.as_str())
    );
    assert_eq!(by_patient.records[0]["sex"], "F");
    let by_research_id = show(
        f.dir.path(),
        &f.key,
        &ClinicalSubject::ResearchId(pseudonym.research_id.clone()),
        "tester",
    )
    .unwrap();
    assert_eq!(by_research_id, by_patient);
    let unknown = show(
        f.dir.path(),
        &f.key,
        &ClinicalSubject::ResearchId("RID-000000".into()),
        "tester",
    );
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("unknown research ID")
    );
    let nobody = show(
        f.dir.path(),
        &f.key,
        &ClinicalSubject::PatientId("P9".into()),
        "tester",
    )
    .unwrap();
    assert!(nobody.records.is_empty() && nobody.research_id.is_none());
    let actions = f.audit_actions();
    assert_eq!(
        actions.iter().filter(|a| *a == "clinical.show").count(),
        4,
        "{actions:?}"
    );
}

#[test]
fn the_export_csv_has_research_ids_shifted_dates_and_clean_text() {
    let f = fixture();
    f.import(
        "patient_id,record_date,age_years,sex,history,comorbidities,pathology_date,crp_mg_l\n\
         MRN-884211,2024-03-01,74,M,Seen by Smith on 2024-02-01 re MRN-884211,COPD; John's asthma,2024-03-10,12.5\n\
         MRN-884211,2024-04-01,,,,,,\n\
         OTHER-1,2024-03-01,50,F,,,,\n",
        true,
    )
    .unwrap();
    let mut vault = f.vault();
    let p = vault.pseudonym("MRN-884211", "SMITH^JOHN").unwrap();
    vault.pseudonym("OTHER-1", "DOE^JANE").unwrap();
    let out = f.dir.path().join("tree");
    std::fs::create_dir_all(&out).unwrap();
    let ids = BTreeSet::from([p.research_id.clone()]);
    let schema = Schema::built_in();
    let rows = write_clinical_csv(&out, &vault, &ids, &schema, &DeidOptions::default()).unwrap();
    assert_eq!(rows, 2);
    let text = std::fs::read_to_string(out.join(CLINICAL_CSV)).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[0], "research_id");
    assert!(!header.contains(&PATIENT_ID.to_owned()));
    assert_eq!(header.len(), schema.columns().len());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let cell = |row: usize, name: &str| {
        let i = header.iter().position(|h| h == name).unwrap();
        rows[row][i].to_owned()
    };
    assert_eq!(cell(0, "research_id"), p.research_id);
    let shifted = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap()
        + chrono::Duration::days(i64::from(p.date_offset_days));
    assert_eq!(
        cell(0, "record_date"),
        shifted.format("%Y-%m-%d").to_string()
    );
    assert_eq!(cell(0, "age_years"), "74");
    assert_eq!(cell(0, "crp_mg_l"), "12.5");
    assert_eq!(cell(0, "history"), "Seen by on re");
    assert_eq!(cell(0, "comorbidities"), "COPD; 's asthma");
    for secret in [
        "MRN-884211",
        "884211",
        "SMITH",
        "Smith",
        "JOHN",
        "John",
        "OTHER-1",
        "2024-",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    // Without the date shift and patient characteristics: those are empty.
    std::fs::remove_file(out.join(CLINICAL_CSV)).unwrap();
    let options = DeidOptions {
        retain_longitudinal_modified_dates: false,
        retain_patient_characteristics: false,
        ..DeidOptions::default()
    };
    write_clinical_csv(&out, &vault, &ids, &schema, &options).unwrap();
    let text = std::fs::read_to_string(out.join(CLINICAL_CSV)).unwrap();
    let first = text.lines().nth(1).unwrap();
    assert!(!first.contains("74") && !first.contains(",M,"), "{first}");
    assert_eq!(
        first.matches('-').count(),
        1,
        "only the research ID: {first}"
    );

    // Patients without records: no file.
    std::fs::remove_file(out.join(CLINICAL_CSV)).unwrap();
    let none = BTreeSet::from(["RID-unknown".to_owned()]);
    assert_eq!(
        write_clinical_csv(&out, &vault, &none, &schema, &options).unwrap(),
        0
    );
    assert!(!out.join(CLINICAL_CSV).exists());
    vault.save().unwrap();
}

#[test]
fn the_documentation_lists_every_built_in_column() {
    let doc = include_str!("../../../docs/clinical-data.md");
    for column in Schema::built_in().columns() {
        assert!(
            doc.contains(&format!("`{}`", column.name)),
            "docs/clinical-data.md does not describe {}",
            column.name
        );
    }
}

#[test]
fn the_csv_in_a_request_is_not_debug_printed() {
    let csv = ClinicalCsv("patient_id\nSECRET\n".into());
    assert_eq!(format!("{csv:?}"), "ClinicalCsv(<18 bytes>)");
}
