from django.http import HttpResponse
from django.urls import path


def hello(request):
    return HttpResponse(
        f"hello from django, {request.method} {request.path}\n",
        content_type="text/plain",
    )


urlpatterns = [path("hello/", hello)]
