from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """Bounded pages: `limit` is capped and an offset past the end is an empty page."""

    max_limit = 500

    def get_offset(self, request):
        return min(super().get_offset(request), self.count)
