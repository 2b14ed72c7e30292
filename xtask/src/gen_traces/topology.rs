//! The simulated shop: its services, their operations, the public routes of the gateway and who calls
//! whom. Pure data plus a few derived tables (medians, the keys each route's traces can contain).
//!
//! Duration model: every (service, operation) key has one log-normal duration distribution
//! `LN(ln median, sigma)`, whatever the caller. A server operation's median is derived bottom-up:
//! `own_ms + CHILD_MARGIN × Σ_stage max_step(calls × child median)`, so that its children usually fit
//! inside a duration drawn from its own distribution (see `trace.rs` for the fitting). An HTTP call
//! appears twice: a CLIENT span in the caller, whose key is (caller service, callee operation name)
//! with `LN(median / SERVER_SHARE, sigma)` of the callee, and the callee's SERVER span, which takes
//! exactly `SERVER_SHARE` of the client span (the rest is network), so both have the same z.
//! A parent's sigma is raised to its widest child's: with correlated draws (`trace.rs`), a child
//! spreading wider than its parent would often outgrow it.

use std::collections::BTreeSet;

pub type SvcId = usize;
pub type OpId = usize;
pub type RouteId = usize;

/// The share of an HTTP client span that its server span takes; the rest is network and queueing.
pub const SERVER_SHARE: f64 = 0.96;
/// Headroom of a parent's median over its children's, so that children rarely need scaling to fit.
const CHILD_MARGIN: f64 = 1.35;

/// Which OpenTelemetry semantic conventions a service's instrumentation writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Conv {
    /// `http.method`, `http.target`, `http.status_code`, `net.peer.ip`, `db.statement`, …
    Old,
    /// `http.request.method`, `url.path`, `http.response.status_code`, `db.query.text`, …
    New,
}

pub struct ServiceDef {
    pub name: &'static str,
    pub conv: Conv,
    pub version: &'static str,
    pub language: &'static str,
    pub scope: &'static str,
    pub scope_version: &'static str,
}

/// What an operation is, which decides its span kind and attributes.
#[derive(Clone, Debug)]
pub enum OpKind {
    /// An HTTP server operation. `route` is the template (`None`: no route matched), `path` the
    /// concrete path template filled from the trace context.
    Server {
        method: &'static str,
        route: Option<&'static str>,
        path: &'static str,
    },
    /// A PostgreSQL call (a CLIENT span in the calling service).
    Db {
        operation: &'static str,
        table: &'static str,
    },
    /// An in-process step (INTERNAL span).
    Internal,
    /// An HTTP call to a system outside the traces (a CLIENT span without a server span).
    External {
        method: &'static str,
        url: &'static str,
    },
}

/// What a caller does when a call fails (5xx) or is refused (4xx).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OnError {
    /// Fail too (5xx become 502, 4xx are passed on) and skip the remaining calls.
    Propagate,
    /// Carry on without it (a recommendation box left empty).
    Degrade,
}

/// When a call is made at all.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum When {
    Always,
    LoggedIn,
}

/// Special answers an operation gives, checked after the given stage (0: before any call).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Hook {
    /// 401 after the session lookup when the session expired.
    Session,
    /// 401 after the password check when the password is wrong.
    Login,
    /// 404 after the first lookup, with this probability (or when the request asks for it).
    NotFound(f64),
    /// 400 before anything, when the request is malformed.
    BadRequest,
    /// 403 after the session check, for a user who is not an administrator.
    AdminCheck,
    /// The gateway found no route: 404 (or the status the request asks for) at once.
    Unmatched,
}

#[derive(Clone, Debug)]
pub struct Step {
    pub target: OpId,
    pub prob: f64,
    pub count: (u32, u32),
    pub on_error: OnError,
    pub when: When,
    /// The statement template of a database call.
    pub statement: Option<&'static str>,
}

pub struct OpDef {
    pub service: SvcId,
    pub name: String,
    pub kind: OpKind,
    pub own_ms: f64,
    /// Median of the operation's total duration; derived for server operations.
    pub median_ms: f64,
    /// Spread of ln(duration).
    pub sigma: f64,
    /// Background probability that the operation fails by itself.
    pub error_rate: f64,
    pub hooks: Vec<Hook>,
    /// Children: stages run one after the other, the steps of a stage in parallel.
    pub stages: Vec<Vec<Step>>,
}

impl OpDef {
    pub fn is_server(&self) -> bool {
        matches!(self.kind, OpKind::Server { .. })
    }
    pub fn is_db(&self) -> bool {
        matches!(self.kind, OpKind::Db { .. })
    }
    pub fn has_hook(&self, hook: Hook) -> bool {
        self.hooks.contains(&hook)
    }
    pub fn not_found_prob(&self) -> Option<f64> {
        self.hooks.iter().find_map(|h| match h {
            Hook::NotFound(p) => Some(*p),
            _ => None,
        })
    }
}

/// Who may call a route.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    Public,
    /// Needs a logged-in user (the gateway validates the session first).
    User,
    /// Administrators only (`/admin/...`).
    Admin,
    /// Paths no route matches (old links, icons); 404.
    Unmatched,
}

pub struct RouteDef {
    /// The gateway's root operation.
    pub op: OpId,
    /// Share of normal traffic (admin routes: 0, they have their own schedule).
    pub weight: f64,
    pub access: Access,
}

/// A (service, operation) key as detectors see it: (service name, span name).
pub type Key = (String, String);

pub struct Topology {
    pub services: Vec<ServiceDef>,
    pub ops: Vec<OpDef>,
    pub routes: Vec<RouteDef>,
    /// Every key a trace of each route can contain, including client spans.
    pub route_keys: Vec<BTreeSet<Key>>,
}

fn db(statement: &'static str, target: OpId) -> Step {
    Step {
        target,
        prob: 1.0,
        count: (1, 1),
        on_error: OnError::Propagate,
        when: When::Always,
        statement: Some(statement),
    }
}

fn call(target: OpId) -> Step {
    Step {
        target,
        prob: 1.0,
        count: (1, 1),
        on_error: OnError::Propagate,
        when: When::Always,
        statement: None,
    }
}

impl Step {
    /// Optional calls: every optional call happens in at least 10 % of its root's traces, so that
    /// shape detection (operations never seen under a root) learns it during warm-up; a call made in
    /// 0.1 % of traces would look "never seen" when it finally happens.
    fn p(mut self, prob: f64) -> Self {
        assert!(
            prob >= 0.1,
            "optional calls must happen in at least 10 % of traces"
        );
        self.prob = prob;
        self
    }
    fn times(mut self, lo: u32, hi: u32) -> Self {
        assert!(
            hi <= 3,
            "normal traffic repeats a call at most 3 times under one parent"
        );
        self.count = (lo, hi);
        self
    }
    fn degrade(mut self) -> Self {
        self.on_error = OnError::Degrade;
        self
    }
    fn logged_in(mut self) -> Self {
        self.when = When::LoggedIn;
        self
    }
}

struct Builder {
    services: Vec<ServiceDef>,
    ops: Vec<OpDef>,
    routes: Vec<RouteDef>,
}

impl Builder {
    fn service(
        &mut self,
        name: &'static str,
        conv: Conv,
        version: &'static str,
        language: &'static str,
        scope: (&'static str, &'static str),
    ) -> SvcId {
        self.services.push(ServiceDef {
            name,
            conv,
            version,
            language,
            scope: scope.0,
            scope_version: scope.1,
        });
        self.services.len() - 1
    }

    fn op(&mut self, service: SvcId, name: String, kind: OpKind, own_ms: f64, sigma: f64) -> OpId {
        self.ops.push(OpDef {
            service,
            name,
            kind,
            own_ms,
            median_ms: own_ms,
            sigma,
            error_rate: 0.0,
            hooks: Vec::new(),
            stages: Vec::new(),
        });
        self.ops.len() - 1
    }

    fn db(
        &mut self,
        service: SvcId,
        operation: &'static str,
        table: &'static str,
        ms: f64,
        sigma: f64,
    ) -> OpId {
        let id = self.op(
            service,
            format!("{operation} {table}"),
            OpKind::Db { operation, table },
            ms,
            sigma,
        );
        self.ops[id].error_rate = 0.002;
        id
    }

    fn internal(&mut self, service: SvcId, name: &'static str, ms: f64, sigma: f64) -> OpId {
        self.op(service, name.to_owned(), OpKind::Internal, ms, sigma)
    }

    #[allow(clippy::too_many_arguments)]
    fn server(
        &mut self,
        service: SvcId,
        method: &'static str,
        route: &'static str,
        path: &'static str,
        own_ms: f64,
        sigma: f64,
        error_rate: f64,
        stages: Vec<Vec<Step>>,
    ) -> OpId {
        let id = self.op(
            service,
            format!("{method} {route}"),
            OpKind::Server {
                method,
                route: Some(route),
                path,
            },
            own_ms,
            sigma,
        );
        self.ops[id].error_rate = error_rate;
        self.ops[id].stages = stages;
        id
    }

    fn hooks(&mut self, op: OpId, hooks: &[Hook]) {
        self.ops[op].hooks.extend_from_slice(hooks);
    }

    fn route(&mut self, op: OpId, weight: f64, access: Access) -> RouteId {
        self.routes.push(RouteDef { op, weight, access });
        self.routes.len() - 1
    }
}

impl Topology {
    /// The shop. Order matters only for determinism; nothing is ever iterated from a hash map.
    pub fn shop() -> Topology {
        let mut b = Builder {
            services: Vec::new(),
            ops: Vec::new(),
            routes: Vec::new(),
        };
        let gateway = b.service(
            "gateway",
            Conv::New,
            "3.4.1",
            "go",
            (
                "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
                "0.58.0",
            ),
        );
        let web = b.service(
            "web",
            Conv::New,
            "2024.12.3",
            "nodejs",
            ("@opentelemetry/instrumentation-http", "0.57.1"),
        );
        let catalog = b.service(
            "catalog",
            Conv::Old,
            "1.18.0",
            "java",
            ("io.opentelemetry.spring-webmvc-6.0", "1.32.0-alpha"),
        );
        let search = b.service(
            "search",
            Conv::New,
            "0.9.4",
            "python",
            ("opentelemetry.instrumentation.fastapi", "0.50b0"),
        );
        let cart = b.service(
            "cart",
            Conv::Old,
            "2.3.0",
            "java",
            ("io.opentelemetry.spring-webmvc-6.0", "1.32.0-alpha"),
        );
        let checkout = b.service(
            "checkout",
            Conv::New,
            "4.1.2",
            "go",
            (
                "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
                "0.58.0",
            ),
        );
        let payments = b.service(
            "payments",
            Conv::Old,
            "1.7.5",
            "dotnet",
            ("OpenTelemetry.Instrumentation.AspNetCore", "1.7.0"),
        );
        let users = b.service(
            "users",
            Conv::New,
            "3.0.0",
            "java",
            ("io.opentelemetry.spring-webmvc-6.0", "2.10.0-alpha"),
        );
        let inventory = b.service(
            "inventory",
            Conv::Old,
            "1.4.2",
            "go",
            (
                "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
                "0.45.0",
            ),
        );
        let recommendations = b.service(
            "recommendations",
            Conv::New,
            "0.12.0",
            "python",
            ("opentelemetry.instrumentation.flask", "0.50b0"),
        );

        // Databases and in-process steps: (median ms, sigma).
        let db_products = b.db(catalog, "SELECT", "products", 2.5, 0.35);
        let db_images = b.db(catalog, "SELECT", "product_images", 2.2, 0.3);
        let db_categories = b.db(catalog, "SELECT", "categories", 2.0, 0.25);
        let db_products_update = b.db(catalog, "UPDATE", "products", 3.0, 0.4);
        let db_stock = b.db(inventory, "SELECT", "stock", 2.0, 0.3);
        let db_stock_update = b.db(inventory, "UPDATE", "stock", 2.5, 0.4);
        let db_similarity = b.db(recommendations, "SELECT", "product_similarity", 4.0, 0.5);
        let db_cart_select = b.db(cart, "SELECT", "cart_items", 2.4, 0.35);
        let db_cart_insert = b.db(cart, "INSERT", "cart_items", 2.2, 0.35);
        let db_cart_delete = b.db(cart, "DELETE", "cart_items", 2.0, 0.35);
        let db_orders_insert = b.db(checkout, "INSERT", "orders", 3.5, 0.35);
        let db_order_items_insert = b.db(checkout, "INSERT", "order_items", 2.0, 0.3);
        let db_orders = b.db(checkout, "SELECT", "orders", 2.5, 0.4);
        let db_order_items = b.db(checkout, "SELECT", "order_items", 2.2, 0.3);
        let db_payments_insert = b.db(payments, "INSERT", "payments", 3.0, 0.3);
        let db_payments = b.db(payments, "SELECT", "payments", 2.4, 0.3);
        let db_users = b.db(users, "SELECT", "users", 2.2, 0.3);
        let db_sessions = b.db(users, "SELECT", "sessions", 2.0, 0.25);
        let db_sessions_insert = b.db(users, "INSERT", "sessions", 2.6, 0.3);
        let parse_query = b.internal(search, "parse query", 2.0, 0.3);
        let query_index = b.internal(search, "query index", 18.0, 0.5);
        let rank = b.internal(search, "rank results", 12.0, 0.45);
        let render = b.internal(web, "render home", 8.0, 0.3);
        let fraud = b.internal(payments, "fraud score", 8.0, 0.4);
        let bcrypt = b.internal(users, "bcrypt verify", 45.0, 0.15);
        let psp = b.op(
            payments,
            "POST".to_owned(),
            OpKind::External {
                method: "POST",
                url: "https://api.psp.example/v1/charges",
            },
            25.0,
            0.5,
        );
        b.ops[psp].error_rate = 0.002;

        // Internal HTTP operations (routes under /v1, so that no gateway client span shares a name
        // with a gateway route).
        let stock_one = b.server(
            inventory,
            "GET",
            "/v1/stock/{sku}",
            "/v1/stock/{sku}",
            1.5,
            0.3,
            0.003,
            vec![vec![db(
                "SELECT quantity, reserved FROM stock WHERE sku = '{sku}'",
                db_stock,
            )]],
        );
        let stock_batch = b.server(
            inventory,
            "POST",
            "/v1/stock/batch",
            "/v1/stock/batch",
            2.0,
            0.3,
            0.003,
            vec![vec![db(
                "SELECT sku, quantity FROM stock WHERE sku IN ({skus})",
                db_stock,
            )]],
        );
        let stock_reserve = b.server(inventory, "POST", "/v1/stock/reserve", "/v1/stock/reserve", 3.0, 0.35, 0.003, vec![
            vec![db("UPDATE stock SET reserved = reserved + {qty} WHERE sku = '{sku}' AND quantity - reserved >= {qty}", db_stock_update).times(1, 3)],
        ]);
        let products_batch = b.server(
            catalog,
            "POST",
            "/v1/products/batch",
            "/v1/products/batch",
            2.0,
            0.3,
            0.002,
            vec![vec![db(
                "SELECT id, name, price_cents FROM products WHERE id IN ({ids})",
                db_products,
            )]],
        );
        let similar = b.server(recommendations, "GET", "/v1/recommendations/similar/{id}", "/v1/recommendations/similar/{product}", 6.0, 0.45, 0.008, vec![
            vec![db("SELECT similar_id, score FROM product_similarity WHERE product_id = {product} ORDER BY score DESC LIMIT 8", db_similarity)],
        ]);
        let recs_home = b.server(recommendations, "GET", "/v1/recommendations/home", "/v1/recommendations/home", 10.0, 0.5, 0.008, vec![
            vec![db("SELECT product_id FROM product_similarity WHERE segment = '{segment}' ORDER BY score DESC LIMIT 12", db_similarity)],
            vec![call(products_batch)],
        ]);
        let products_list = b.server(catalog, "GET", "/v1/products", "/v1/products", 4.0, 0.3, 0.004, vec![
            vec![db("SELECT id, name, price_cents FROM products WHERE category_id = {category} ORDER BY rank LIMIT 24 OFFSET {offset}", db_products)],
            vec![db("SELECT id, name FROM categories WHERE parent_id = {category}", db_categories).p(0.4)],
            vec![call(stock_batch).p(0.35).degrade()],
        ]);
        let product = b.server(catalog, "GET", "/v1/products/{id}", "/v1/products/{product}", 3.0, 0.3, 0.003, vec![
            vec![db("SELECT id, name, description, price_cents FROM products WHERE id = {product}", db_products)],
            vec![db("SELECT url, width, height FROM product_images WHERE product_id = {product}", db_images).p(0.6)],
            vec![call(stock_one), call(similar).p(0.4).degrade()],
        ]);
        b.hooks(product, &[Hook::BadRequest, Hook::NotFound(0.015)]);
        let categories = b.server(
            catalog,
            "GET",
            "/v1/categories",
            "/v1/categories",
            1.5,
            0.25,
            0.002,
            vec![vec![db(
                "SELECT id, name, parent_id FROM categories WHERE visible = true ORDER BY position",
                db_categories,
            )]],
        );
        let admin_product = b.server(catalog, "PUT", "/v1/admin/products/{id}", "/v1/admin/products/{product}", 5.0, 0.3, 0.005, vec![
            vec![db("UPDATE products SET price_cents = {price}, updated_at = now() WHERE id = {product}", db_products_update)],
        ]);
        let search_op = b.server(
            search,
            "GET",
            "/v1/search",
            "/v1/search",
            3.0,
            0.35,
            0.006,
            vec![
                vec![call(parse_query)],
                vec![call(query_index)],
                vec![call(rank)],
                vec![call(products_batch).p(0.85)],
            ],
        );
        let cart_get = b.server(
            cart,
            "GET",
            "/v1/cart",
            "/v1/cart",
            2.0,
            0.3,
            0.002,
            vec![
                vec![db(
                    "SELECT product_id, quantity FROM cart_items WHERE cart_id = {cart}",
                    db_cart_select,
                )],
                vec![call(products_batch).p(0.75)],
            ],
        );
        let cart_add = b.server(cart, "POST", "/v1/cart/items", "/v1/cart/items", 3.0, 0.3, 0.005, vec![
            vec![call(stock_one)],
            vec![db("INSERT INTO cart_items (cart_id, product_id, quantity) VALUES ({cart}, {product}, {qty})", db_cart_insert)],
            vec![db("SELECT count(*) FROM cart_items WHERE cart_id = {cart}", db_cart_select).p(0.3)],
        ]);
        let cart_remove = b.server(
            cart,
            "DELETE",
            "/v1/cart/items/{id}",
            "/v1/cart/items/{item}",
            2.0,
            0.3,
            0.004,
            vec![vec![db(
                "DELETE FROM cart_items WHERE cart_id = {cart} AND id = {item}",
                db_cart_delete,
            )]],
        );
        let cart_clear = b.server(
            cart,
            "DELETE",
            "/v1/cart",
            "/v1/cart",
            2.0,
            0.3,
            0.004,
            vec![vec![db(
                "DELETE FROM cart_items WHERE cart_id = {cart}",
                db_cart_delete,
            )]],
        );
        let charge = b.server(payments, "POST", "/v1/payments/charge", "/v1/payments/charge", 5.0, 0.35, 0.004, vec![
            vec![call(fraud)],
            vec![call(psp)],
            vec![db("INSERT INTO payments (order_ref, amount_cents, provider_ref) VALUES ('{order}', {price}, 'ch_{hex}')", db_payments_insert)],
        ]);
        let payment = b.server(
            payments,
            "GET",
            "/v1/payments/{id}",
            "/v1/payments/{order}",
            2.0,
            0.3,
            0.003,
            vec![vec![db(
                "SELECT status, amount_cents FROM payments WHERE order_ref = '{order}'",
                db_payments,
            )]],
        );
        let checkout_op = b.server(checkout, "POST", "/v1/checkout", "/v1/checkout", 3.0, 0.35, 0.003, vec![
            vec![call(cart_get)],
            vec![call(stock_reserve)],
            vec![call(charge)],
            vec![db("INSERT INTO orders (user_id, total_cents, status) VALUES ('{user}', {price}, 'paid') RETURNING id", db_orders_insert)],
            vec![db("INSERT INTO order_items (order_id, product_id, quantity) VALUES ({order}, {product}, {qty})", db_order_items_insert).times(1, 3)],
            vec![call(cart_clear).p(0.9).degrade()],
        ]);
        let orders = b.server(checkout, "GET", "/v1/orders", "/v1/orders", 3.0, 0.3, 0.004, vec![
            vec![db("SELECT id, total_cents, status FROM orders WHERE user_id = '{user}' ORDER BY created_at DESC LIMIT 20", db_orders)],
        ]);
        let order = b.server(checkout, "GET", "/v1/orders/{id}", "/v1/orders/{order}", 3.0, 0.3, 0.004, vec![
            vec![db("SELECT id, total_cents, status FROM orders WHERE id = {order}", db_orders)],
            vec![db("SELECT product_id, quantity, price_cents FROM order_items WHERE order_id = {order}", db_order_items)],
            vec![call(payment).p(0.5).degrade()],
        ]);
        b.hooks(order, &[Hook::NotFound(0.01)]);
        let admin_orders = b.server(checkout, "GET", "/v1/admin/orders", "/v1/admin/orders", 6.0, 0.4, 0.005, vec![
            vec![db("SELECT id, user_id, total_cents FROM orders WHERE created_at > now() - interval '1 day' ORDER BY id DESC LIMIT 100", db_orders)],
        ]);
        let admin_stats = b.server(checkout, "GET", "/v1/admin/stats", "/v1/admin/stats", 10.0, 0.4, 0.005, vec![
            vec![db("SELECT date_trunc('hour', created_at), count(*), sum(total_cents) FROM orders WHERE created_at > now() - interval '7 days' GROUP BY 1", db_orders)],
        ]);
        let session = b.server(
            users,
            "GET",
            "/v1/sessions/{id}",
            "/v1/sessions/{session}",
            1.0,
            0.25,
            0.002,
            vec![vec![db(
                "SELECT user_id, role, expires_at FROM sessions WHERE token_hash = '{session}'",
                db_sessions,
            )]],
        );
        b.hooks(session, &[Hook::Session]);
        let login = b.server(users, "POST", "/v1/login", "/v1/login", 4.0, 0.3, 0.004, vec![
            vec![db("SELECT id, password_hash FROM users WHERE email = '{email}'", db_users)],
            vec![call(bcrypt)],
            vec![db("INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ('{user}', '{session}', now() + interval '7 days')", db_sessions_insert)],
        ]);
        b.hooks(login, &[Hook::Login]);
        let user = b.server(
            users,
            "GET",
            "/v1/users/{id}",
            "/v1/users/{user}",
            2.0,
            0.3,
            0.003,
            vec![vec![db(
                "SELECT id, email, display_name FROM users WHERE id = '{user}'",
                db_users,
            )]],
        );
        let admin_users = b.server(
            users,
            "GET",
            "/v1/admin/users",
            "/v1/admin/users",
            5.0,
            0.4,
            0.005,
            vec![vec![db(
                "SELECT id, email, created_at FROM users ORDER BY created_at DESC LIMIT 50",
                db_users,
            )]],
        );
        let home = b.server(
            web,
            "GET",
            "/v1/pages/home",
            "/v1/pages/home",
            6.0,
            0.3,
            0.003,
            vec![
                vec![
                    call(categories),
                    call(recs_home).p(0.55).degrade(),
                    call(user).logged_in().degrade(),
                ],
                vec![call(render)],
            ],
        );

        // The gateway's routes: the root spans.
        let gw = |b: &mut Builder, method, route, path, stages| {
            b.server(gateway, method, route, path, 1.5, 0.3, 0.0005, stages)
        };
        let with_session = |main: OpId| vec![vec![call(session)], vec![call(main)]];
        let r = gw(&mut b, "GET", "/", "/", vec![vec![call(home)]]);
        b.route(r, 0.09, Access::Public);
        let r = gw(
            &mut b,
            "GET",
            "/api/products",
            "/api/products",
            vec![vec![call(products_list)]],
        );
        b.route(r, 0.15, Access::Public);
        let r = gw(
            &mut b,
            "GET",
            "/api/products/{id}",
            "/api/products/{product}",
            vec![vec![call(product)]],
        );
        b.route(r, 0.22, Access::Public);
        let r = gw(
            &mut b,
            "GET",
            "/api/search",
            "/api/search",
            vec![vec![call(search_op)]],
        );
        b.route(r, 0.13, Access::Public);
        let r = gw(
            &mut b,
            "GET",
            "/api/cart",
            "/api/cart",
            with_session(cart_get),
        );
        b.route(r, 0.08, Access::User);
        let r = gw(
            &mut b,
            "POST",
            "/api/cart/items",
            "/api/cart/items",
            with_session(cart_add),
        );
        b.route(r, 0.07, Access::User);
        let r = gw(
            &mut b,
            "DELETE",
            "/api/cart/items/{id}",
            "/api/cart/items/{item}",
            with_session(cart_remove),
        );
        b.route(r, 0.02, Access::User);
        let r = gw(
            &mut b,
            "POST",
            "/api/checkout",
            "/api/checkout",
            with_session(checkout_op),
        );
        b.route(r, 0.03, Access::User);
        let r = gw(
            &mut b,
            "POST",
            "/api/login",
            "/api/login",
            vec![vec![call(login)]],
        );
        b.route(r, 0.04, Access::Public);
        let r = gw(
            &mut b,
            "GET",
            "/api/users/me",
            "/api/users/me",
            with_session(user),
        );
        b.route(r, 0.05, Access::User);
        let r = gw(
            &mut b,
            "GET",
            "/api/orders",
            "/api/orders",
            with_session(orders),
        );
        b.route(r, 0.03, Access::User);
        let r = gw(
            &mut b,
            "GET",
            "/api/orders/{id}",
            "/api/orders/{order}",
            with_session(order),
        );
        b.route(r, 0.02, Access::User);
        let r = gw(
            &mut b,
            "GET",
            "/api/recommendations",
            "/api/recommendations",
            vec![vec![call(recs_home)]],
        );
        b.route(r, 0.04, Access::Public);
        let r = gw(
            &mut b,
            "GET",
            "/api/categories",
            "/api/categories",
            vec![vec![call(categories)]],
        );
        b.route(r, 0.03, Access::Public);
        let unmatched = b.op(
            gateway,
            "GET".to_owned(),
            OpKind::Server {
                method: "GET",
                route: None,
                path: "{junk}",
            },
            2.0,
            0.3,
        );
        b.hooks(unmatched, &[Hook::Unmatched]);
        b.route(unmatched, 0.004, Access::Unmatched);
        for (method, route, path, main) in [
            ("GET", "/admin/users", "/admin/users", admin_users),
            ("GET", "/admin/orders", "/admin/orders", admin_orders),
            ("GET", "/admin/stats", "/admin/stats", admin_stats),
            (
                "PUT",
                "/admin/products/{id}",
                "/admin/products/{product}",
                admin_product,
            ),
        ] {
            let r = gw(&mut b, method, route, path, with_session(main));
            b.hooks(r, &[Hook::AdminCheck]);
            b.route(r, 0.0, Access::Admin);
        }

        let mut topology = Topology {
            services: b.services,
            ops: b.ops,
            routes: b.routes,
            route_keys: Vec::new(),
        };
        topology.derive_medians();
        topology.route_keys = (0..topology.routes.len())
            .map(|r| topology.subtree_keys(topology.routes[r].op))
            .collect();
        topology.check_keys();
        topology
    }

    fn derive_medians(&mut self) {
        // A parent is at least as variable as its most variable child: with correlated draws, a
        // child with a wider spread would often outgrow a narrower parent.
        fn median(ops: &mut [OpDef], id: OpId, done: &mut [bool]) -> f64 {
            if done[id] {
                return ops[id].median_ms;
            }
            let stages = ops[id].stages.clone();
            let mut children = 0.0;
            for stage in &stages {
                let mut longest: f64 = 0.0;
                for step in stage {
                    let m = median(ops, step.target, done);
                    ops[id].sigma = ops[id].sigma.max(ops[step.target].sigma);
                    let call = if ops[step.target].is_server() {
                        m / SERVER_SHARE
                    } else {
                        m
                    };
                    longest = longest.max(call * f64::from(step.count.1));
                }
                children += longest;
            }
            ops[id].median_ms = ops[id].own_ms + CHILD_MARGIN * children;
            done[id] = true;
            ops[id].median_ms
        }
        let mut done = vec![false; self.ops.len()];
        for id in 0..self.ops.len() {
            median(&mut self.ops, id, &mut done);
        }
    }

    /// Asserts that every key has one duration distribution: no two operations share a
    /// (service, name), and a client span name in a service always calls the same operation.
    fn check_keys(&self) {
        let mut owners: std::collections::BTreeMap<Key, OpId> = std::collections::BTreeMap::new();
        for (id, op) in self.ops.iter().enumerate() {
            if matches!(op.kind, OpKind::External { .. }) {
                continue;
            }
            let key = self.key(op.service, id);
            assert!(
                owners.insert(key.clone(), id).is_none(),
                "duplicate key {key:?}"
            );
        }
        for op in &self.ops {
            for step in op.stages.iter().flatten() {
                if self.ops[step.target].is_server() {
                    let key = self.key(op.service, step.target);
                    let owner = owners
                        .entry(key.clone())
                        .or_insert(usize::MAX - step.target);
                    assert_eq!(
                        *owner,
                        usize::MAX - step.target,
                        "client key {key:?} is ambiguous"
                    );
                }
            }
        }
    }

    pub fn service_name(&self, service: SvcId) -> &'static str {
        self.services[service].name
    }

    /// The key of a span of `op` emitted by `service` (the callee's own service, or the caller's for
    /// a client span).
    pub fn key(&self, service: SvcId, op: OpId) -> Key {
        (
            self.services[service].name.to_owned(),
            self.ops[op].name.clone(),
        )
    }

    /// The keys a call of `step` from `caller` can produce: the client span, the callee and below.
    pub fn step_keys(&self, caller: SvcId, step: &Step) -> BTreeSet<Key> {
        let target = &self.ops[step.target];
        let mut keys = self.subtree_keys(step.target);
        if target.is_server() {
            keys.insert(self.key(caller, step.target));
        }
        keys
    }

    /// The keys a span of `op` and its descendants can produce.
    pub fn subtree_keys(&self, op: OpId) -> BTreeSet<Key> {
        let mut keys = BTreeSet::new();
        keys.insert(self.key(self.ops[op].service, op));
        for step in self.ops[op].stages.iter().flatten() {
            keys.extend(self.step_keys(self.ops[op].service, step));
        }
        keys
    }

    /// All keys of the routes whose traces can contain any of `keys`.
    pub fn keys_of_routes_touching(&self, keys: &BTreeSet<Key>) -> BTreeSet<Key> {
        let mut out = keys.clone();
        for r in 0..self.routes.len() {
            if self.route_keys[r].iter().any(|k| keys.contains(k)) {
                out.extend(self.route_keys[r].iter().cloned());
            }
        }
        out
    }

    /// Log-normal parameters (median ms, sigma) of a span of `op`: the operation's own for server,
    /// database, internal and external spans; for the client span of an HTTP call, the callee's
    /// stretched by the network share.
    pub fn ln_params(&self, op: OpId, client: bool) -> (f64, f64) {
        let def = &self.ops[op];
        if client {
            (def.median_ms / SERVER_SHARE, def.sigma)
        } else {
            (def.median_ms, def.sigma)
        }
    }

    pub fn gateway(&self) -> SvcId {
        0
    }

    /// Server operations of non-gateway services.
    pub fn internal_servers(&self) -> Vec<OpId> {
        (0..self.ops.len())
            .filter(|&o| self.ops[o].is_server() && self.ops[o].service != self.gateway())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_cover_children_and_stay_in_range() {
        let t = Topology::shop();
        for op in &t.ops {
            assert!(op.median_ms >= op.own_ms);
            assert!((0.15..=0.6).contains(&op.sigma), "{}", op.name);
            assert!(
                (2.0..=200.0).contains(&op.median_ms),
                "{} {}",
                op.name,
                op.median_ms
            );
        }
    }

    #[test]
    fn every_call_happens_in_at_least_ten_percent_of_its_roots_traces() {
        fn walk(t: &Topology, op: OpId, p: f64, route: &str) {
            for step in t.ops[op].stages.iter().flatten() {
                // Logged-in users make at least half of any route's traffic.
                let when = if step.when == When::LoggedIn {
                    0.5
                } else {
                    1.0
                };
                let q = p * step.prob * when;
                assert!(q >= 0.1, "{} under {route}: {q}", t.ops[step.target].name);
                walk(t, step.target, q, route);
            }
        }
        let t = Topology::shop();
        for r in &t.routes {
            walk(&t, r.op, 1.0, &t.ops[r.op].name);
        }
    }

    #[test]
    fn normal_parents_have_at_most_ten_children() {
        let t = Topology::shop();
        for op in &t.ops {
            let max: u32 = op.stages.iter().flatten().map(|s| s.count.1).sum();
            assert!(max <= 10, "{}", op.name);
        }
    }
}
