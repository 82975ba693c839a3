from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response


class Pagination(LimitOffsetPagination):
    """Bounded pages: `limit` is capped and an offset past the end is an empty page."""

    max_limit = 500

    def get_offset(self, request):
        return min(super().get_offset(request), self.count)


class PaginatedView:
    """An API view whose GET answers a page: `{count, next, previous, results}`. Its
    `pagination_class` is what the schema documents the page and `limit`/`offset` from."""

    pagination_class = Pagination

    def paginated(self, rows, serializer_class, **serializer_kwargs) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, self.request, view=self)
        return paginator.get_paginated_response(
            serializer_class(page, many=True, **serializer_kwargs).data
        )
