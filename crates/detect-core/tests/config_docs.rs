//! The configuration table in docs/DETECTION.md is the one the code generates from its table of keys,
//! so the docs cannot drift from what is validated. `UPDATE_DOCS=1` rewrites it.

const START: &str = "<!-- config-table:start -->\n";
const END: &str = "<!-- config-table:end -->";

#[test]
fn the_docs_show_the_configuration_table_of_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/DETECTION.md");
    let docs = std::fs::read_to_string(path).unwrap();
    let start = docs.find(START).expect("the start marker") + START.len();
    let end = docs.find(END).expect("the end marker");
    let expected = detect_core::config::markdown_table();
    if docs[start..end] == expected {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{expected}{}", &docs[..start], &docs[end..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    panic!(
        "docs/DETECTION.md's configuration table is out of date (UPDATE_DOCS=1 rewrites it); between the markers it should read:\n{expected}"
    );
}
