//! The shop as plain tables: services, operations, who calls whom, and the gateway's routes.
//!
//! Operations are named by a handle (`"db_products"`, `"stock_one"`) that calls refer to; the
//! builder in `topology.rs` turns handles into ids. Ids are positions in the order of these tables
//! (databases, in-process steps, external calls, internal servers, then the gateway's operations:
//! routes, catch-all, admin routes), so reordering rows changes the generated traffic.

use super::{Access, Conv, Hook, OnError, ServiceDef, When};

const OTELHTTP: &str = "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp";
const SPRING_WEBMVC: &str = "io.opentelemetry.spring-webmvc-6.0";

/// The services, in id order; the gateway is first (`Topology::gateway`).
#[rustfmt::skip]
pub const SERVICES: &[ServiceDef] = &[
    ServiceDef { name: "gateway", conv: Conv::New, version: "3.4.1", language: "go", scope: OTELHTTP, scope_version: "0.58.0" },
    ServiceDef { name: "web", conv: Conv::New, version: "2024.12.3", language: "nodejs", scope: "@opentelemetry/instrumentation-http", scope_version: "0.57.1" },
    ServiceDef { name: "catalog", conv: Conv::Old, version: "1.18.0", language: "java", scope: SPRING_WEBMVC, scope_version: "1.32.0-alpha" },
    ServiceDef { name: "search", conv: Conv::New, version: "0.9.4", language: "python", scope: "opentelemetry.instrumentation.fastapi", scope_version: "0.50b0" },
    ServiceDef { name: "cart", conv: Conv::Old, version: "2.3.0", language: "java", scope: SPRING_WEBMVC, scope_version: "1.32.0-alpha" },
    ServiceDef { name: "checkout", conv: Conv::New, version: "4.1.2", language: "go", scope: OTELHTTP, scope_version: "0.58.0" },
    ServiceDef { name: "payments", conv: Conv::Old, version: "1.7.5", language: "dotnet", scope: "OpenTelemetry.Instrumentation.AspNetCore", scope_version: "1.7.0" },
    ServiceDef { name: "users", conv: Conv::New, version: "3.0.0", language: "java", scope: SPRING_WEBMVC, scope_version: "2.10.0-alpha" },
    ServiceDef { name: "inventory", conv: Conv::Old, version: "1.4.2", language: "go", scope: OTELHTTP, scope_version: "0.45.0" },
    ServiceDef { name: "recommendations", conv: Conv::New, version: "0.12.0", language: "python", scope: "opentelemetry.instrumentation.flask", scope_version: "0.50b0" },
];

/// A PostgreSQL call, named `{operation} {table}`.
pub struct DbOp {
    pub id: &'static str,
    pub service: &'static str,
    pub operation: &'static str,
    pub table: &'static str,
    pub median_ms: f64,
    pub sigma: f64,
}

/// Background failure rate of every database call.
pub const DB_ERROR_RATE: f64 = 0.002;

#[rustfmt::skip]
pub const DATABASES: &[DbOp] = &[
    DbOp { id: "db_products", service: "catalog", operation: "SELECT", table: "products", median_ms: 2.5, sigma: 0.35 },
    DbOp { id: "db_images", service: "catalog", operation: "SELECT", table: "product_images", median_ms: 2.2, sigma: 0.3 },
    DbOp { id: "db_categories", service: "catalog", operation: "SELECT", table: "categories", median_ms: 2.0, sigma: 0.25 },
    DbOp { id: "db_products_update", service: "catalog", operation: "UPDATE", table: "products", median_ms: 3.0, sigma: 0.4 },
    DbOp { id: "db_stock", service: "inventory", operation: "SELECT", table: "stock", median_ms: 2.0, sigma: 0.3 },
    DbOp { id: "db_stock_update", service: "inventory", operation: "UPDATE", table: "stock", median_ms: 2.5, sigma: 0.4 },
    DbOp { id: "db_similarity", service: "recommendations", operation: "SELECT", table: "product_similarity", median_ms: 4.0, sigma: 0.5 },
    DbOp { id: "db_cart_select", service: "cart", operation: "SELECT", table: "cart_items", median_ms: 2.4, sigma: 0.35 },
    DbOp { id: "db_cart_insert", service: "cart", operation: "INSERT", table: "cart_items", median_ms: 2.2, sigma: 0.35 },
    DbOp { id: "db_cart_delete", service: "cart", operation: "DELETE", table: "cart_items", median_ms: 2.0, sigma: 0.35 },
    DbOp { id: "db_orders_insert", service: "checkout", operation: "INSERT", table: "orders", median_ms: 3.5, sigma: 0.35 },
    DbOp { id: "db_order_items_insert", service: "checkout", operation: "INSERT", table: "order_items", median_ms: 2.0, sigma: 0.3 },
    DbOp { id: "db_orders", service: "checkout", operation: "SELECT", table: "orders", median_ms: 2.5, sigma: 0.4 },
    DbOp { id: "db_order_items", service: "checkout", operation: "SELECT", table: "order_items", median_ms: 2.2, sigma: 0.3 },
    DbOp { id: "db_payments_insert", service: "payments", operation: "INSERT", table: "payments", median_ms: 3.0, sigma: 0.3 },
    DbOp { id: "db_payments", service: "payments", operation: "SELECT", table: "payments", median_ms: 2.4, sigma: 0.3 },
    DbOp { id: "db_users", service: "users", operation: "SELECT", table: "users", median_ms: 2.2, sigma: 0.3 },
    DbOp { id: "db_sessions", service: "users", operation: "SELECT", table: "sessions", median_ms: 2.0, sigma: 0.25 },
    DbOp { id: "db_sessions_insert", service: "users", operation: "INSERT", table: "sessions", median_ms: 2.6, sigma: 0.3 },
];

/// An in-process step (INTERNAL span).
pub struct InProcessOp {
    pub id: &'static str,
    pub name: &'static str,
    pub service: &'static str,
    pub median_ms: f64,
    pub sigma: f64,
}

#[rustfmt::skip]
pub const IN_PROCESS: &[InProcessOp] = &[
    InProcessOp { id: "parse_query", name: "parse query", service: "search", median_ms: 2.0, sigma: 0.3 },
    InProcessOp { id: "query_index", name: "query index", service: "search", median_ms: 18.0, sigma: 0.5 },
    InProcessOp { id: "rank", name: "rank results", service: "search", median_ms: 12.0, sigma: 0.45 },
    InProcessOp { id: "render", name: "render home", service: "web", median_ms: 8.0, sigma: 0.3 },
    InProcessOp { id: "fraud", name: "fraud score", service: "payments", median_ms: 8.0, sigma: 0.4 },
    InProcessOp { id: "bcrypt", name: "bcrypt verify", service: "users", median_ms: 45.0, sigma: 0.15 },
];

/// An HTTP call to a system outside the traces, named by its method.
pub struct ExternalOp {
    pub id: &'static str,
    pub service: &'static str,
    pub method: &'static str,
    pub url: &'static str,
    pub median_ms: f64,
    pub sigma: f64,
    pub error_rate: f64,
}

#[rustfmt::skip]
pub const EXTERNAL: &[ExternalOp] = &[
    ExternalOp { id: "psp", service: "payments", method: "POST", url: "https://api.psp.example/v1/charges", median_ms: 25.0, sigma: 0.5, error_rate: 0.002 },
];

/// A call from an operation: the `Step` of `topology.rs`, with the callee named by its handle.
pub struct Call {
    pub target: &'static str,
    pub prob: f64,
    pub count: (u32, u32),
    pub on_error: OnError,
    pub when: When,
    /// The statement template of a database call.
    pub statement: Option<&'static str>,
}

/// One call of `target`, always made; its failure fails the caller.
pub const fn call(target: &'static str) -> Call {
    Call {
        target,
        prob: 1.0,
        count: (1, 1),
        on_error: OnError::Propagate,
        when: When::Always,
        statement: None,
    }
}

/// One database call of `target` running `statement`.
pub const fn db(statement: &'static str, target: &'static str) -> Call {
    Call {
        statement: Some(statement),
        ..call(target)
    }
}

// The checks run when the tables are compiled.
impl Call {
    /// Optional calls: every optional call happens in at least 10 % of its root's traces, so that
    /// shape detection (operations never seen under a root) learns it during warm-up; a call made in
    /// 0.1 % of traces would look "never seen" when it finally happens.
    const fn p(mut self, prob: f64) -> Self {
        assert!(
            prob >= 0.1,
            "optional calls must happen in at least 10 % of traces"
        );
        self.prob = prob;
        self
    }
    const fn times(mut self, lo: u32, hi: u32) -> Self {
        assert!(
            hi <= 3,
            "normal traffic repeats a call at most 3 times under one parent"
        );
        self.count = (lo, hi);
        self
    }
    const fn degrade(mut self) -> Self {
        self.on_error = OnError::Degrade;
        self
    }
    const fn logged_in(mut self) -> Self {
        self.when = When::LoggedIn;
        self
    }
}

/// An internal HTTP server operation, named `{method} {route}`. Its median is derived from its own
/// time and its calls.
pub struct ServerOp {
    pub id: &'static str,
    pub service: &'static str,
    pub method: &'static str,
    pub route: &'static str,
    /// The concrete path, filled from the trace context.
    pub path: &'static str,
    pub own_ms: f64,
    pub sigma: f64,
    pub error_rate: f64,
    pub hooks: &'static [Hook],
    /// Stages run one after the other, the calls of a stage in parallel.
    pub stages: &'static [&'static [Call]],
}

/// Internal HTTP operations (routes under /v1, so that no gateway client span shares a name with a
/// gateway route).
#[rustfmt::skip]
pub const SERVERS: &[ServerOp] = &[
    ServerOp {
        id: "stock_one", service: "inventory", method: "GET", route: "/v1/stock/{sku}", path: "/v1/stock/{sku}",
        own_ms: 1.5, sigma: 0.3, error_rate: 0.003, hooks: &[],
        stages: &[
            &[db("SELECT quantity, reserved FROM stock WHERE sku = '{sku}'", "db_stock")],
        ],
    },
    ServerOp {
        id: "stock_batch", service: "inventory", method: "POST", route: "/v1/stock/batch", path: "/v1/stock/batch",
        own_ms: 2.0, sigma: 0.3, error_rate: 0.003, hooks: &[],
        stages: &[
            &[db("SELECT sku, quantity FROM stock WHERE sku IN ({skus})", "db_stock")],
        ],
    },
    ServerOp {
        id: "stock_reserve", service: "inventory", method: "POST", route: "/v1/stock/reserve", path: "/v1/stock/reserve",
        own_ms: 3.0, sigma: 0.35, error_rate: 0.003, hooks: &[],
        stages: &[
            &[db("UPDATE stock SET reserved = reserved + {qty} WHERE sku = '{sku}' AND quantity - reserved >= {qty}", "db_stock_update").times(1, 3)],
        ],
    },
    ServerOp {
        id: "products_batch", service: "catalog", method: "POST", route: "/v1/products/batch", path: "/v1/products/batch",
        own_ms: 2.0, sigma: 0.3, error_rate: 0.002, hooks: &[],
        stages: &[
            &[db("SELECT id, name, price_cents FROM products WHERE id IN ({ids})", "db_products")],
        ],
    },
    ServerOp {
        id: "similar", service: "recommendations", method: "GET", route: "/v1/recommendations/similar/{id}", path: "/v1/recommendations/similar/{product}",
        own_ms: 6.0, sigma: 0.45, error_rate: 0.008, hooks: &[],
        stages: &[
            &[db("SELECT similar_id, score FROM product_similarity WHERE product_id = {product} ORDER BY score DESC LIMIT 8", "db_similarity")],
        ],
    },
    ServerOp {
        id: "recs_home", service: "recommendations", method: "GET", route: "/v1/recommendations/home", path: "/v1/recommendations/home",
        own_ms: 10.0, sigma: 0.5, error_rate: 0.008, hooks: &[],
        stages: &[
            &[db("SELECT product_id FROM product_similarity WHERE segment = '{segment}' ORDER BY score DESC LIMIT 12", "db_similarity")],
            &[call("products_batch")],
        ],
    },
    ServerOp {
        id: "products_list", service: "catalog", method: "GET", route: "/v1/products", path: "/v1/products",
        own_ms: 4.0, sigma: 0.3, error_rate: 0.004, hooks: &[],
        stages: &[
            &[db("SELECT id, name, price_cents FROM products WHERE category_id = {category} ORDER BY rank LIMIT 24 OFFSET {offset}", "db_products")],
            &[db("SELECT id, name FROM categories WHERE parent_id = {category}", "db_categories").p(0.4)],
            &[call("stock_batch").p(0.35).degrade()],
        ],
    },
    ServerOp {
        id: "product", service: "catalog", method: "GET", route: "/v1/products/{id}", path: "/v1/products/{product}",
        own_ms: 3.0, sigma: 0.3, error_rate: 0.003, hooks: &[Hook::BadRequest, Hook::NotFound(0.015)],
        stages: &[
            &[db("SELECT id, name, description, price_cents FROM products WHERE id = {product}", "db_products")],
            &[db("SELECT url, width, height FROM product_images WHERE product_id = {product}", "db_images").p(0.6)],
            &[call("stock_one"), call("similar").p(0.4).degrade()],
        ],
    },
    ServerOp {
        id: "categories", service: "catalog", method: "GET", route: "/v1/categories", path: "/v1/categories",
        own_ms: 1.5, sigma: 0.25, error_rate: 0.002, hooks: &[],
        stages: &[
            &[db("SELECT id, name, parent_id FROM categories WHERE visible = true ORDER BY position", "db_categories")],
        ],
    },
    ServerOp {
        id: "admin_product", service: "catalog", method: "PUT", route: "/v1/admin/products/{id}", path: "/v1/admin/products/{product}",
        own_ms: 5.0, sigma: 0.3, error_rate: 0.005, hooks: &[],
        stages: &[
            &[db("UPDATE products SET price_cents = {price}, updated_at = now() WHERE id = {product}", "db_products_update")],
        ],
    },
    ServerOp {
        id: "search", service: "search", method: "GET", route: "/v1/search", path: "/v1/search",
        own_ms: 3.0, sigma: 0.35, error_rate: 0.006, hooks: &[],
        stages: &[
            &[call("parse_query")],
            &[call("query_index")],
            &[call("rank")],
            &[call("products_batch").p(0.85)],
        ],
    },
    ServerOp {
        id: "cart_get", service: "cart", method: "GET", route: "/v1/cart", path: "/v1/cart",
        own_ms: 2.0, sigma: 0.3, error_rate: 0.002, hooks: &[],
        stages: &[
            &[db("SELECT product_id, quantity FROM cart_items WHERE cart_id = {cart}", "db_cart_select")],
            &[call("products_batch").p(0.75)],
        ],
    },
    ServerOp {
        id: "cart_add", service: "cart", method: "POST", route: "/v1/cart/items", path: "/v1/cart/items",
        own_ms: 3.0, sigma: 0.3, error_rate: 0.005, hooks: &[],
        stages: &[
            &[call("stock_one")],
            &[db("INSERT INTO cart_items (cart_id, product_id, quantity) VALUES ({cart}, {product}, {qty})", "db_cart_insert")],
            &[db("SELECT count(*) FROM cart_items WHERE cart_id = {cart}", "db_cart_select").p(0.3)],
        ],
    },
    ServerOp {
        id: "cart_remove", service: "cart", method: "DELETE", route: "/v1/cart/items/{id}", path: "/v1/cart/items/{item}",
        own_ms: 2.0, sigma: 0.3, error_rate: 0.004, hooks: &[],
        stages: &[
            &[db("DELETE FROM cart_items WHERE cart_id = {cart} AND id = {item}", "db_cart_delete")],
        ],
    },
    ServerOp {
        id: "cart_clear", service: "cart", method: "DELETE", route: "/v1/cart", path: "/v1/cart",
        own_ms: 2.0, sigma: 0.3, error_rate: 0.004, hooks: &[],
        stages: &[
            &[db("DELETE FROM cart_items WHERE cart_id = {cart}", "db_cart_delete")],
        ],
    },
    ServerOp {
        id: "charge", service: "payments", method: "POST", route: "/v1/payments/charge", path: "/v1/payments/charge",
        own_ms: 5.0, sigma: 0.35, error_rate: 0.004, hooks: &[],
        stages: &[
            &[call("fraud")],
            &[call("psp")],
            &[db("INSERT INTO payments (order_ref, amount_cents, provider_ref) VALUES ('{order}', {price}, 'ch_{hex}')", "db_payments_insert")],
        ],
    },
    ServerOp {
        id: "payment", service: "payments", method: "GET", route: "/v1/payments/{id}", path: "/v1/payments/{order}",
        own_ms: 2.0, sigma: 0.3, error_rate: 0.003, hooks: &[],
        stages: &[
            &[db("SELECT status, amount_cents FROM payments WHERE order_ref = '{order}'", "db_payments")],
        ],
    },
    ServerOp {
        id: "checkout", service: "checkout", method: "POST", route: "/v1/checkout", path: "/v1/checkout",
        own_ms: 3.0, sigma: 0.35, error_rate: 0.003, hooks: &[],
        stages: &[
            &[call("cart_get")],
            &[call("stock_reserve")],
            &[call("charge")],
            &[db("INSERT INTO orders (user_id, total_cents, status) VALUES ('{user}', {price}, 'paid') RETURNING id", "db_orders_insert")],
            &[db("INSERT INTO order_items (order_id, product_id, quantity) VALUES ({order}, {product}, {qty})", "db_order_items_insert").times(1, 3)],
            &[call("cart_clear").p(0.9).degrade()],
        ],
    },
    ServerOp {
        id: "orders", service: "checkout", method: "GET", route: "/v1/orders", path: "/v1/orders",
        own_ms: 3.0, sigma: 0.3, error_rate: 0.004, hooks: &[],
        stages: &[
            &[db("SELECT id, total_cents, status FROM orders WHERE user_id = '{user}' ORDER BY created_at DESC LIMIT 20", "db_orders")],
        ],
    },
    ServerOp {
        id: "order", service: "checkout", method: "GET", route: "/v1/orders/{id}", path: "/v1/orders/{order}",
        own_ms: 3.0, sigma: 0.3, error_rate: 0.004, hooks: &[Hook::NotFound(0.01)],
        stages: &[
            &[db("SELECT id, total_cents, status FROM orders WHERE id = {order}", "db_orders")],
            &[db("SELECT product_id, quantity, price_cents FROM order_items WHERE order_id = {order}", "db_order_items")],
            &[call("payment").p(0.5).degrade()],
        ],
    },
    ServerOp {
        id: "admin_orders", service: "checkout", method: "GET", route: "/v1/admin/orders", path: "/v1/admin/orders",
        own_ms: 6.0, sigma: 0.4, error_rate: 0.005, hooks: &[],
        stages: &[
            &[db("SELECT id, user_id, total_cents FROM orders WHERE created_at > now() - interval '1 day' ORDER BY id DESC LIMIT 100", "db_orders")],
        ],
    },
    ServerOp {
        id: "admin_stats", service: "checkout", method: "GET", route: "/v1/admin/stats", path: "/v1/admin/stats",
        own_ms: 10.0, sigma: 0.4, error_rate: 0.005, hooks: &[],
        stages: &[
            &[db("SELECT date_trunc('hour', created_at), count(*), sum(total_cents) FROM orders WHERE created_at > now() - interval '7 days' GROUP BY 1", "db_orders")],
        ],
    },
    ServerOp {
        id: "session", service: "users", method: "GET", route: "/v1/sessions/{id}", path: "/v1/sessions/{session}",
        own_ms: 1.0, sigma: 0.25, error_rate: 0.002, hooks: &[Hook::Session],
        stages: &[
            &[db("SELECT user_id, role, expires_at FROM sessions WHERE token_hash = '{session}'", "db_sessions")],
        ],
    },
    ServerOp {
        id: "login", service: "users", method: "POST", route: "/v1/login", path: "/v1/login",
        own_ms: 4.0, sigma: 0.3, error_rate: 0.004, hooks: &[Hook::Login],
        stages: &[
            &[db("SELECT id, password_hash FROM users WHERE email = '{email}'", "db_users")],
            &[call("bcrypt")],
            &[db("INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ('{user}', '{session}', now() + interval '7 days')", "db_sessions_insert")],
        ],
    },
    ServerOp {
        id: "user", service: "users", method: "GET", route: "/v1/users/{id}", path: "/v1/users/{user}",
        own_ms: 2.0, sigma: 0.3, error_rate: 0.003, hooks: &[],
        stages: &[
            &[db("SELECT id, email, display_name FROM users WHERE id = '{user}'", "db_users")],
        ],
    },
    ServerOp {
        id: "admin_users", service: "users", method: "GET", route: "/v1/admin/users", path: "/v1/admin/users",
        own_ms: 5.0, sigma: 0.4, error_rate: 0.005, hooks: &[],
        stages: &[
            &[db("SELECT id, email, created_at FROM users ORDER BY created_at DESC LIMIT 50", "db_users")],
        ],
    },
    ServerOp {
        id: "home", service: "web", method: "GET", route: "/v1/pages/home", path: "/v1/pages/home",
        own_ms: 6.0, sigma: 0.3, error_rate: 0.003, hooks: &[],
        stages: &[
            &[call("categories"), call("recs_home").p(0.55).degrade(), call("user").logged_in().degrade()],
            &[call("render")],
        ],
    },
];

/// A route of the gateway: its root operation, named `{method} {route}`, calls `forward_to`, after
/// the session lookup for user and admin routes (and the admin check for admin routes).
pub struct GatewayRoute {
    pub method: &'static str,
    pub route: &'static str,
    pub path: &'static str,
    pub forward_to: &'static str,
    /// Share of normal traffic (admin routes: 0, they have their own schedule).
    pub weight: f64,
    pub access: Access,
}

/// A routed gateway operation's own time (ms), spread and background failure rate.
pub const ROUTE_OWN_MS: f64 = 1.5;
pub const ROUTE_SIGMA: f64 = 0.3;
pub const ROUTE_ERROR_RATE: f64 = 0.0005;

const fn gateway_route(
    method: &'static str,
    route: &'static str,
    path: &'static str,
    forward_to: &'static str,
    weight: f64,
    access: Access,
) -> GatewayRoute {
    GatewayRoute {
        method,
        route,
        path,
        forward_to,
        weight,
        access,
    }
}

/// An administrators' route.
const fn admin(
    method: &'static str,
    route: &'static str,
    path: &'static str,
    forward_to: &'static str,
) -> GatewayRoute {
    gateway_route(method, route, path, forward_to, 0.0, Access::Admin)
}

/// The public and user routes, in id order (then comes the catch-all, then the admin routes).
#[rustfmt::skip]
pub const ROUTES: &[GatewayRoute] = &[
    gateway_route("GET", "/", "/", "home", 0.09, Access::Public),
    gateway_route("GET", "/api/products", "/api/products", "products_list", 0.15, Access::Public),
    gateway_route("GET", "/api/products/{id}", "/api/products/{product}", "product", 0.22, Access::Public),
    gateway_route("GET", "/api/search", "/api/search", "search", 0.13, Access::Public),
    gateway_route("GET", "/api/cart", "/api/cart", "cart_get", 0.08, Access::User),
    gateway_route("POST", "/api/cart/items", "/api/cart/items", "cart_add", 0.07, Access::User),
    gateway_route("DELETE", "/api/cart/items/{id}", "/api/cart/items/{item}", "cart_remove", 0.02, Access::User),
    gateway_route("POST", "/api/checkout", "/api/checkout", "checkout", 0.03, Access::User),
    gateway_route("POST", "/api/login", "/api/login", "login", 0.04, Access::Public),
    gateway_route("GET", "/api/users/me", "/api/users/me", "user", 0.05, Access::User),
    gateway_route("GET", "/api/orders", "/api/orders", "orders", 0.03, Access::User),
    gateway_route("GET", "/api/orders/{id}", "/api/orders/{order}", "order", 0.02, Access::User),
    gateway_route("GET", "/api/recommendations", "/api/recommendations", "recs_home", 0.04, Access::Public),
    gateway_route("GET", "/api/categories", "/api/categories", "categories", 0.03, Access::Public),
];

/// The gateway's operation for paths no route matches (old links, icons): it answers 404 itself,
/// named by its method, and never fails by itself.
pub struct CatchAll {
    pub method: &'static str,
    pub path: &'static str,
    pub own_ms: f64,
    pub sigma: f64,
    pub weight: f64,
}

pub const CATCH_ALL: CatchAll = CatchAll {
    method: "GET",
    path: "{junk}",
    own_ms: 2.0,
    sigma: 0.3,
    weight: 0.004,
};

/// Administrators only, after the catch-all in id order.
#[rustfmt::skip]
pub const ADMIN_ROUTES: &[GatewayRoute] = &[
    admin("GET", "/admin/users", "/admin/users", "admin_users"),
    admin("GET", "/admin/orders", "/admin/orders", "admin_orders"),
    admin("GET", "/admin/stats", "/admin/stats", "admin_stats"),
    admin("PUT", "/admin/products/{id}", "/admin/products/{product}", "admin_product"),
];
