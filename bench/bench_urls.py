"""The app's URLs plus `/bench/noop`: a Django view that does nothing, the baseline."""
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from shopseg.urls import urlpatterns as app_urlpatterns


@csrf_exempt
def noop(request):
    request.body  # read the body like the webhook view does
    return HttpResponse(status=200)


urlpatterns = [path("bench/noop", noop), *app_urlpatterns]
