#include "cyclecast/storage/database.h"
