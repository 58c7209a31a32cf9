// /docs: Swagger UI over /openapi.json. The bundle is served from this host (the pinned
// swagger-ui-bundle package), loaded by a deferred classic script before this module runs.
const holder = document.querySelector("[data-api-docs]");
if (typeof window.SwaggerUIBundle !== "function") {
  holder.textContent = "The API reference viewer did not load. The document itself is at /openapi.json.";
} else {
  holder.replaceChildren();
  window.SwaggerUIBundle({
    url: document.body.dataset.openapiUrl,
    domNode: holder,
    deepLinking: true,
    persistAuthorization: false,
    tryItOutEnabled: false,
  });
}
