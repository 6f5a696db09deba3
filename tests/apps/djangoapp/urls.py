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


async def hello_async(request):
    # An async view: under the asgi worker it runs on the event loop.
    import asyncio

    await asyncio.sleep(0)
    return HttpResponse(
        f"hello from async django, {request.method} {request.path}\n",
        content_type="text/plain",
    )


urlpatterns = [
    path("hello/", hello),
    path("probe/", probe),
    path("async/", hello_async),
]
