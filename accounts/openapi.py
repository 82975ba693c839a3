"""The API schema's error answers: their shapes, and the schema class that gives every
operation the ones it can answer (REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS)."""

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS, AllowAny


class ErrorOut(serializers.Serializer):
    """A refusal: not signed in, not allowed, not found, the licence screen, too many
    requests; and a 400 about the request as a whole (a body that is not JSON)."""

    detail = serializers.CharField()


VALIDATION_ERROR = (
    "Each refused field with its messages: `{field: [messages]}`; `non_field_errors` for "
    "the input as a whole; an object or a list of them for nested input."
)


class ValidationErrorOut(serializers.Serializer):
    """VALIDATION_ERROR's shape, described by ValidationErrorScheme: a serializer has no
    way to say "a map from any field's name"."""


class ValidationErrorScheme(OpenApiSerializerExtension):
    target_class = ValidationErrorOut

    def map_serializer(self, auto_schema, direction):
        nested = {"$ref": "#/components/schemas/ValidationErrorOut"}
        return {
            "type": "object",
            "description": VALIDATION_ERROR,
            "additionalProperties": {
                "oneOf": [
                    {"type": "array", "items": {"oneOf": [{"type": "string"}, nested]}},
                    nested,
                ]
            },
        }


BAD_REQUEST = PolymorphicProxySerializer(
    component_name="BadRequestOut",
    serializers=[ValidationErrorOut, ErrorOut],
    resource_type_field_name=None,
)


ERROR_DESCRIPTIONS = {
    400: "The input is refused: each field named with its messages.",
    401: "Not signed in, or the credentials are not valid.",
    402: "The account's subscription has lapsed: only billing is open until it is paid.",
    403: "Signed in, but not allowed to do this.",
    404: "No such row, or one of another account's.",
    429: "Too many requests: wait for the time in Retry-After.",
}


class AutoSchema(openapi.AutoSchema):
    """Every operation also documents its error answers, in DRF's shapes: 400 when it takes
    input, 401 and 403 unless anyone may call it, 404 when its path names a row, 429 when
    it is throttled; and whatever else the view lists in `error_statuses` (say, the
    licence screen's 402). A status the operation documents itself is left as it is."""

    def error_statuses(self) -> set[int]:
        statuses = set(getattr(self.view, "error_statuses", ()))
        if self.method not in SAFE_METHODS or self._declares_query_parameters():
            statuses.add(400)
        if self.view.get_authenticators() and not all(
            isinstance(permission, AllowAny) for permission in self.view.get_permissions()
        ):
            statuses |= {401, 403}
        if "{" in self.path:
            statuses.add(404)
        if self.view.get_throttles():
            statuses.add(429)
        return statuses

    def _declares_query_parameters(self) -> bool:
        """Query parameters of its own (not the pagination's): a bad value answers 400."""
        return any(
            isinstance(parameter, OpenApiParameter)
            and parameter.location == OpenApiParameter.QUERY
            and not parameter.exclude
            for parameter in self.get_override_parameters()
        )

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        media_types = self.map_renderers("media_type")
        for status in sorted(self.error_statuses()):
            if str(status) in responses:
                continue
            body = BAD_REQUEST if status == 400 else ErrorOut
            schema = self.resolve_serializer(body, "response").ref
            responses[str(status)] = {
                "content": {media_type: {"schema": schema} for media_type in media_types},
                "description": ERROR_DESCRIPTIONS.get(status, ""),
            }
        return operation
