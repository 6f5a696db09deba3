import django
from django.http import HttpResponse, JsonResponse
from django.urls import path

from probe import describe


def hello(request):
    return HttpResponse(
        f"hello from django, {request.method} {request.path}\n",
        content_type="text/plain",
    )


def probe(request):
    # Where Django was imported from: the deployment tests check it is the
    # virtualenv corral runs on.
    response = JsonResponse(describe(django=django.__file__))
    # Without CommonMiddleware Django sends no Content-Length.
    response["Content-Length"] = str(len(response.content))
    return response


urlpatterns = [path("hello/", hello), path("probe/", probe)]
