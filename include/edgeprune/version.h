#pragma once
#define EP_VERSION "0.1.0"
